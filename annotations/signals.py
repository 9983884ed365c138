"""Signals annotations sends to apps it must not import.

gold_labels_changed(sender=Dataset, dataset=..., actor=...) is sent inside the
transaction that changed the gold labels, so receivers' writes commit with it.
"""

from django.dispatch import Signal

gold_labels_changed = Signal()

# items_imported(sender=Dataset, dataset=..., batch=...) is sent inside the import's
# transaction; receivers schedule work with transaction.on_commit.
items_imported = Signal()
