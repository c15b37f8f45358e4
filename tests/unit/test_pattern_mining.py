"""The Drain tree: lookup, learn, restore, and state rebuilt from clusters."""

import random

import pytest

from logs.mining import WILDCARD, Cluster, Drain, tokenize
from tests.loghub import LOGHUB_SYSTEMS, loghub_rows


def learn_all(drain: Drain, lines: list[list[str]]) -> None:
    next_id = 1
    for tokens in lines:
        cluster, _ = drain.learn(tokens, new_id=next_id)
        if cluster.id == next_id:
            next_id += 1


def test_cluster_template_joins_tokens():
    cluster = Cluster(7, ["user", "<*>", "logged", "in"])

    assert cluster.template == "user <*> logged in"
    assert cluster.template.split(" ") == cluster.tokens


def test_learn_creates_then_generalizes():
    drain = Drain()

    first, new = drain.learn(["connected", "to", "alpha", "on", "port"], new_id=1)
    assert new
    assert first.id == 1
    second, changed = drain.learn(["connected", "to", "beta", "on", "port"], new_id=2)

    assert changed
    assert second is first
    assert second.tokens == ["connected", "to", WILDCARD, "on", "port"]
    same, changed_again = drain.learn(
        ["connected", "to", "gamma", "on", "port"], new_id=3
    )
    assert same.id == 1
    assert not changed_again
    assert [c.id for c in drain.clusters()] == [1]


def test_learn_separates_dissimilar_lines():
    drain = Drain()

    drain.learn(["disk", "full", "on", "node"], new_id=1)
    cluster, new = drain.learn(["cpu", "hot", "in", "rack"], new_id=2)

    assert new
    assert cluster.id == 2
    assert len(drain.clusters()) == 2


def test_learn_splits_by_token_count():
    drain = Drain()

    drain.learn(["job", "done"], new_id=1)
    cluster, new = drain.learn(["job", "done", "late"], new_id=2)

    assert new
    assert cluster.id == 2


def test_learn_rejects_id_in_use():
    drain = Drain()
    drain.learn(["a", "b"], new_id=1)

    with pytest.raises(ValueError, match="already in use"):
        drain.learn(["x", "y", "z"], new_id=1)


def test_lookup_changes_nothing():
    drain = Drain()
    drain.learn(["connected", "to", "alpha", "on", "port"], new_id=1)

    assert drain.lookup(["connected", "to", "alpha", "on", "port"]) == (
        drain.clusters()[0],
        False,
    )
    cluster, would_change = drain.lookup(["connected", "to", "beta", "on", "port"])
    assert cluster is not None
    assert cluster.id == 1
    assert would_change
    assert cluster.tokens == ["connected", "to", "alpha", "on", "port"]
    assert drain.lookup(["something", "else", "entirely", "in", "here"]) == (
        None,
        False,
    )
    assert len(drain.clusters()) == 1


def test_lookup_matches_learn():
    rows = loghub_rows("OpenSSH")
    drain = Drain()
    for number, row in enumerate(rows[:400], start=1):
        tokens = tokenize(row["Content"])
        expected, would_change = drain.lookup(tokens)
        before = list(expected.tokens) if expected else None
        cluster, changed = drain.learn(tokens, new_id=number)
        if expected is None:
            assert cluster.id == number
            assert changed
        else:
            assert cluster.id == expected.id
            assert changed == would_change
            assert (cluster.tokens != before) == changed


def test_restore_replaces_template():
    drain = Drain()
    drain.learn(["connected", "to", "alpha", "on", "port"], new_id=4)

    drain.restore(4, ["connected", "to", WILDCARD, "on", "port"])

    assert [c.tokens for c in drain.clusters()] == [
        ["connected", "to", WILDCARD, "on", "port"]
    ]
    cluster, would_change = drain.lookup(["connected", "to", "beta", "on", "port"])
    assert cluster is not None
    assert cluster.id == 4
    assert not would_change


def test_empty_line_has_a_cluster():
    drain = Drain()

    cluster, new = drain.learn([], new_id=1)

    assert new
    assert cluster.template == ""
    assert drain.lookup([]) == (cluster, False)


def test_max_children_ties_go_to_lowest_id():
    # With one child per node, only the token of the lowest id keeps its
    # own branch, whatever the restore order.
    lines = {5: ["beta", "x", "y"], 3: ["alpha", "x", "y"], 9: ["gamma", "q", "r"]}
    answers = []
    for order in ([5, 3, 9], [9, 5, 3], [3, 9, 5]):
        drain = Drain(max_children=1)
        for cluster_id in order:
            drain.restore(cluster_id, lines[cluster_id])
        cluster, _ = drain.lookup(["delta", "x", "y"])
        answers.append(cluster.id if cluster else None)

    assert answers[0] == answers[1] == answers[2]


def test_max_clusters_joins_closest():
    drain = Drain(max_clusters=2)
    drain.learn(["disk", "full", "on", "node"], new_id=1)
    drain.learn(["cpu", "hot", "in", "rack"], new_id=2)

    cluster, changed = drain.learn(["cpu", "cold", "in", "room"], new_id=3)

    assert cluster.id == 2
    assert changed
    assert len(drain.clusters()) == 2
    # A token count with no cluster still gets one.
    other, new = drain.learn(["short"], new_id=3)
    assert other.id == 3
    assert new


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="depth"):
        Drain(depth=2)
    with pytest.raises(ValueError, match="similarity_threshold"):
        Drain(similarity_threshold=1.5)
    with pytest.raises(ValueError, match="max_children"):
        Drain(max_children=0)


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
@pytest.mark.parametrize("max_children", [100, 3])
def test_restored_drain_answers_the_same(system, max_children):
    lines = [tokenize(row["Content"]) for row in loghub_rows(system)]
    learned = Drain(max_children=max_children)
    learn_all(learned, lines)
    clusters = learned.clusters()
    random.Random(f"{system}-{max_children}").shuffle(clusters)

    restored = Drain(max_children=max_children)
    for cluster in clusters:
        restored.restore(cluster.id, cluster.tokens)

    assert [c.tokens for c in restored.clusters()] == [
        c.tokens for c in learned.clusters()
    ]
    for tokens in lines:
        expected, expected_change = learned.lookup(tokens)
        actual, actual_change = restored.lookup(tokens)
        expected_id = expected.id if expected else None
        actual_id = actual.id if actual else None
        assert actual_id == expected_id, tokens
        assert actual_change == expected_change


def test_different_identifiers_never_merge():
    drain = Drain()
    drain.learn(["Session", "<*>", "initialized", "by", "client", "UpdateAgent"], 1)

    cluster, new = drain.learn(
        ["Session", "<*>", "initialized", "by", "client", "SPP"], new_id=2
    )

    assert new
    assert cluster.id == 2


def test_lowercase_words_merge():
    drain = Drain()
    drain.learn(["session", "opened", "for", "user", "cyrus", "by", "<*>"], 1)

    cluster, changed = drain.learn(
        ["session", "opened", "for", "user", "news", "by", "<*>"], new_id=2
    )

    assert cluster.id == 1
    assert changed
    assert cluster.template == "session opened for user <*> by <*>"


def test_wildcard_template_does_not_absorb_words():
    # A template that is all wildcards matches only lines of masked values,
    # so it does not swallow every line of its length.
    drain = Drain()
    drain.restore(1, [WILDCARD, WILDCARD, WILDCARD, WILDCARD])

    assert drain.lookup(["<*>", "<*>", "<*>", "<*>"]) == (drain.clusters()[0], False)
    assert drain.lookup(["needAutoSync", "autoSyncSwitch", "is", "open"]) == (
        None,
        False,
    )


@pytest.mark.parametrize("system", ["Hadoop", "Linux", "Windows"])
def test_restored_drain_learns_the_same(system):
    lines = [tokenize(row["Content"]) for row in loghub_rows(system)]
    half = len(lines) // 2
    learned = Drain(max_children=3)
    learn_all(learned, lines[:half])
    clusters = learned.clusters()
    random.Random(system).shuffle(clusters)
    restored = Drain(max_children=3)
    for cluster in clusters:
        restored.restore(cluster.id, list(cluster.tokens))

    next_id = max(c.id for c in clusters) + 1
    for tokens in lines[half:]:
        expected, expected_change = learned.learn(tokens, new_id=next_id)
        actual, actual_change = restored.learn(tokens, new_id=next_id)
        assert actual.id == expected.id, tokens
        assert actual.tokens == expected.tokens, tokens
        assert actual_change == expected_change, tokens
        if expected.id == next_id:
            next_id += 1

    assert [(c.id, c.tokens) for c in restored.clusters()] == [
        (c.id, c.tokens) for c in learned.clusters()
    ]
