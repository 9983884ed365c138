"""Each model family's name, label, whether it reads text, and its declared hyperparameters, without
importing the family: the web process lists the choices and validates a policy's hyperparameters from
here, and torch stays in the worker (STYLE 5). The torch families take their declarations from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from models_app.ml.algorithms.base import Hyperparameter

TORCH_MLP_HYPERPARAMETERS = (
    Hyperparameter(
        "hidden_sizes",
        "choice",
        "128,64",
        choices=("32", "64", "128", "64,32", "128,64", "256,128", "256,128,64"),
        help="Units per hidden layer, input side first.",
    ),
    Hyperparameter("dropout", "float", 0.1, 0.0, 0.9, help="Share of hidden units dropped while training."),
    Hyperparameter("epochs", "int", 10, 1, 500, help="Passes over the training rows when training from scratch."),
    Hyperparameter("fine_tune_epochs", "int", 3, 1, 500, help="Passes when warm-started from the champion."),
    Hyperparameter("learning_rate", "float", 1e-3, 1e-6, 1.0, help="AdamW step size."),
    Hyperparameter("batch_size", "int", 256, 8, 65536, help="Rows per gradient step."),
    Hyperparameter("weight_decay", "float", 1e-4, 0.0, 1.0, help="AdamW decoupled weight decay."),
    Hyperparameter(
        "class_weight_balanced", "bool", False, help="Weigh each class by n / (classes × its count) in the loss."
    ),
)

TORCH_TEXT_HYPERPARAMETERS = (
    Hyperparameter("embedding_dim", "int", 64, 4, 1024, help="Size of each token's embedding."),
    Hyperparameter("min_count", "int", 2, 1, 1000, help="A token enters the vocabulary when seen this often."),
    Hyperparameter("max_vocabulary", "int", 50000, 10, 1_000_000, help="Most frequent tokens kept."),
    Hyperparameter("epochs", "int", 5, 1, 500, help="Passes over the training texts when training from scratch."),
    Hyperparameter("fine_tune_epochs", "int", 2, 1, 500, help="Passes when warm-started from the champion."),
    # 128 and 0.02: on 45k synthetic texts as accurate as 64 and 0.01 in half the time (each step
    # updates every embedding row, so fewer, larger steps pay); small data still gets several steps an epoch.
    Hyperparameter("learning_rate", "float", 0.02, 1e-6, 1.0, help="AdamW step size."),
    Hyperparameter("batch_size", "int", 128, 8, 65536, help="Texts per gradient step."),
    Hyperparameter(
        "weight_decay",
        "float",
        0.0,
        0.0,
        1.0,
        help="AdamW decoupled weight decay (classifier layer; embeddings have none).",
    ),
    Hyperparameter(
        "class_weight_balanced", "bool", False, help="Weigh each class by n / (classes × its count) in the loss."
    ),
)


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    handles_text: bool
    hyperparameters: tuple[Hyperparameter, ...]


TORCH_MLP_LABEL = "Multilayer perceptron (torch)"
TORCH_TEXT_LABEL = "Bag-of-embeddings text classifier (torch)"


def catalogue() -> dict[str, Entry]:
    """Every family in the registry's order. The scikit-learn module is imported (it imports scikit-learn
    itself only when fitting); the torch modules are not."""
    from models_app.ml.algorithms import REGISTRY
    from models_app.ml.algorithms.sklearn_models import _ALGORITHMS as SKLEARN

    torch = {
        "torch_mlp": Entry("torch_mlp", TORCH_MLP_LABEL, False, TORCH_MLP_HYPERPARAMETERS),
        "torch_text": Entry("torch_text", TORCH_TEXT_LABEL, True, TORCH_TEXT_HYPERPARAMETERS),
    }
    out = {}
    for name in REGISTRY:
        if name in SKLEARN:
            family = SKLEARN[name]
            out[name] = Entry(name, family.label, family.handles_text, tuple(family.hyperparameters))
        else:
            out[name] = torch[name]
    return out
