import pytest

from direction_finder.errors import UsageError
from direction_finder.generators.imagenet import imagenet_classes, resolve_class, search_classes


@pytest.mark.parametrize("query", [
    "golden_retriever", "golden retriever", "Golden Retriever", "GOLDEN-RETRIEVER", " golden  retriever ",
    "207", 207, "n02099601", "N02099601",
])
def test_every_accepted_spelling_of_golden_retriever(query):
    c = resolve_class(query)
    assert (c.index, c.wordnet_id, c.name, c.slug) == (207, "n02099601", "golden retriever", "golden_retriever")


@pytest.mark.parametrize("query, index", [
    ("tench", 0), ("Tinca tinca", 0), ("tank suit", 639), ("goldfish", 1), ("999", 999), ("toilet tissue", 999),
])
def test_synonyms_and_indices(query, index):
    assert resolve_class(query).index == index


@pytest.mark.parametrize("query, fragments", [
    ("golden_retreiver", ["unknown class", "207 golden retriever (n02099601)", "hpdirs classes"]),
    ("labrador retreiver", ["208 Labrador retriever"]),
    ("xyzzy", ["unknown class 'xyzzy'", "hpdirs classes QUERY"]),
    ("crane", ["ambiguous", "134 crane (n02012849)", "517 crane (n03126707)", "index or WordNet id"]),
    ("maillot", ["ambiguous", "638 maillot", "639 maillot"]),
    ("1000", ["out of range", "0-999"]),
    ("n00000000", ["not one of the 1000"]),
    ("", ["empty"]),
])
def test_unknown_and_ambiguous_names_explain_themselves(query, fragments):
    with pytest.raises(UsageError) as info:
        resolve_class(query)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_table_is_complete_and_ordered():
    classes = imagenet_classes()
    assert len(classes) == 1000 and len({c.wordnet_id for c in classes}) == 1000
    assert [c.index for c in classes] == list(range(1000))
    assert classes[0].wordnet_id == "n01440764" and classes[999].wordnet_id == "n15075141"


def test_search():
    assert [c.index for c in search_classes("retriever")] == [205, 206, 207, 208, 209]
    assert len(search_classes("")) == 1000
    assert search_classes("n02099601")[0].index == 207
