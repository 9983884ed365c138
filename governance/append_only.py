"""A model whose rows are written once: the ORM refuses to change or delete them.

The database refuses too (triggers on each such table, governance migrations 0003,
0005, 0015, 0019, 0022; and the application role has no UPDATE or DELETE there,
workflow_site/db_roles.py): this is the same rule raised earlier, in Python, with a
message that names the kind of record.
"""

from __future__ import annotations

from django.db import models


class AppendOnlyModel(models.Model):
    # What the refusal calls these rows, e.g. "Audit checkpoints"; the class name when not set.
    append_only_name: str = ""

    class Meta:
        abstract = True

    def _refusal(self) -> str:
        return f"{self.append_only_name or type(self).__name__ + ' rows'} are append-only."

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError(self._refusal())
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError(self._refusal())
