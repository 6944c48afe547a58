"""The item catalogue: typed metadata the recommenders display and the LLM reasons over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Item:
    """One catalogue item.

    Attributes:
        index: dense model index, 1..n_items (0 is padding and never an item).
        item_id: the dataset's own token for the item (e.g. ``"267"``).
        title: the title as given by the data, untrusted text (escape it in HTML).
        year: release year when known.
        genres: genre labels, in file order.
        display_name: a title that is unique within the catalogue; repeated or
            uninformative titles get the item id appended.
    """

    index: int
    item_id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    display_name: str = ""

    def describe(self) -> str:
        """Short one-line description for prompts: ``Title (1995) [Drama, War]``."""
        text = self.title
        if self.year is not None and f"({self.year})" not in text:
            text += f" ({self.year})"
        if self.genres:
            text += " [" + ", ".join(self.genres) + "]"
        return text


# Titles that carry no information; they get the id appended like duplicates do.
_UNINFORMATIVE_TITLES = {"", "unknown", "unkonwn"}  # ml-100k item 267 is "unkonwn"


@dataclass
class Catalogue:
    """All items of a dataset, addressable by dense index or by dataset id."""

    items: list[Item]
    _by_id: dict[str, Item] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # items[0] is a padding placeholder so that items[index] works directly.
        if not self.items or self.items[0].index != 0:
            raise ValueError("Catalogue.items[0] must be the padding item")
        self._by_id = {item.item_id: item for item in self.items[1:]}

    @classmethod
    def build(cls, rows: list[tuple[str, str, int | None, tuple[str, ...]]]) -> "Catalogue":
        """Build from ``(item_id, title, year, genres)`` rows ordered by dense index 1..n.

        Display names are made unique: a title shared by several ids, or an
        uninformative one such as ml-100k item 267's "unknown", gets ``[#id]``.
        """
        counts = Counter(title.strip().lower() for _, title, _, _ in rows)
        items = [Item(index=0, item_id="", title="<pad>", display_name="<pad>")]
        for index, (item_id, title, year, genres) in enumerate(rows, start=1):
            key = title.strip().lower()
            shown = title.strip() or "untitled"
            if counts[key] > 1 or key in _UNINFORMATIVE_TITLES:
                shown = f"{shown} [#{item_id}]"
            items.append(Item(index=index, item_id=item_id, title=title, year=year,
                              genres=genres, display_name=shown))
        return cls(items=items)

    def __len__(self) -> int:
        """Number of real items (padding excluded)."""
        return len(self.items) - 1

    def __getitem__(self, index: int) -> Item:
        return self.items[index]

    def by_id(self, item_id: str) -> Item:
        """Look an item up by its dataset id; raises KeyError naming the id."""
        try:
            return self._by_id[str(item_id)]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def has_id(self, item_id: str) -> bool:
        return str(item_id) in self._by_id

    def search(self, text: str, limit: int = 20) -> list[Item]:
        """Case-insensitive substring search over display names."""
        needle = text.strip().lower()
        if not needle:
            return []
        return [it for it in self.items[1:] if needle in it.display_name.lower()][:limit]
