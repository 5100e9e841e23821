"""Example plugins for grist recipes. A plugin is a plain function or class: a document in,
True (keep) or a reason string (drop) out. Recipes name it by dotted path, `my_filters:NoShouting`,
and grist validates its parameters against `__init__`'s keyword arguments."""

from pipeline.document import Document


class NoShouting:
    """Drops documents written mostly in capitals (spam, headers, shouting forum posts)."""

    def __init__(self, max_upper_ratio: float = 0.5, min_letters: int = 50) -> None:
        self.max_upper_ratio = max_upper_ratio
        self.min_letters = min_letters

    def filter(self, doc: Document) -> bool | str:
        letters = sum(map(str.isalpha, doc.text))
        if letters < self.min_letters:
            return True
        upper = sum(map(str.isupper, doc.text))
        return "shouting" if upper / letters > self.max_upper_ratio else True


def no_redirects(doc: Document) -> bool | str:
    """Drops MediaWiki redirect stubs (`#REDIRECT [[Target]]`)."""
    return "redirect" if doc.text.lstrip().upper().startswith("#REDIRECT") else True
