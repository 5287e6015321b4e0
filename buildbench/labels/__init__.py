"""People in the loop: labels on a build's queries (``store``), the review page (``server``), imports of labels
made elsewhere (``formats``), and what labels decide and measure (``decide``)."""

from .store import ANSWERS, GOOD, LABELS, MISSED_POSITIVE, VAGUE, WRONG, Label, LabelError, LabelStore

__all__ = ["ANSWERS", "GOOD", "LABELS", "MISSED_POSITIVE", "VAGUE", "WRONG", "Label", "LabelError", "LabelStore"]
