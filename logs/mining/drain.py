"""The Drain tree: online grouping of tokenized log lines under templates.

Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth
Tree", ICWS 2017) routes a line through a tree of fixed depth: first by its
token count, then by its leading tokens, to a leaf whose clusters it is
compared with token by token. The line joins the most similar cluster when
the similarity reaches a threshold, and the positions where they differ
become wildcards in the cluster's template. Otherwise it starts a cluster.

This implementation keeps one extra invariant: the tree is a function of
the clusters' (id, tokens) alone. The lowest cluster id that carries a
leading token, not the arrival order, decides whether that token gets a
child of its own. A cluster whose template changes is moved as if it had
been restored with the new template. So any process that restores the
same clusters, in any order, gets a tree whose lookup() returns the same.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WILDCARD = "<*>"
_DIGIT = re.compile(r"\d")


@dataclass
class Cluster:
    """A template and its id; WILDCARD marks the variable positions."""

    id: int
    tokens: list[str]

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


def _route_key(token: str) -> str:
    """Return the child key of a token: tokens with a wildcard or a digit share one."""
    if WILDCARD in token or _DIGIT.search(token):
        return WILDCARD
    return token


class _Node:
    """An inner node that routes on the token at `position`, or a leaf."""

    __slots__ = ("position", "children", "token_ids", "selected", "clusters")

    def __init__(self, position: int | None) -> None:
        # None for a leaf, which stores clusters instead of children.
        self.position = position
        self.children: dict[str, _Node] = {}
        # Literal route key -> ids of the clusters below that carry it.
        self.token_ids: dict[str, set[int]] = {}
        # The literal keys that have a child of their own.
        self.selected: set[str] = set()
        self.clusters: dict[int, Cluster] = {}


class Drain:
    """A Drain tree with generic defaults.

    depth counts the token-count level and the leaf level too, so depth - 2
    leading tokens route a line. similarity_threshold is the minimum share
    of positions where a line must equal a cluster's template to join it.
    max_children caps the literal children of a node, and the other tokens
    share the wildcard child.

    max_clusters bounds memory. Once it is reached, a line that would start
    a cluster joins the most similar cluster with its token count instead,
    whatever the similarity (even across different identifiers). Only a
    token count with no cluster at all still starts one, so learn() exceeds
    max_clusters by at most the number of token counts, which tokenize()
    caps at MAX_TOKENS + 1. restore() adds every cluster it is given.
    """

    def __init__(
        self,
        *,
        depth: int = 4,
        similarity_threshold: float = 0.7,
        max_children: int = 100,
        max_clusters: int = 5000,
    ) -> None:
        if depth < 3:
            raise ValueError(f"depth must be at least 3, got {depth}")
        if not 0.0 <= similarity_threshold <= 1.0:
            raise ValueError(
                f"similarity_threshold must be between 0 and 1, got "
                f"{similarity_threshold}"
            )
        if max_children < 1 or max_clusters < 1:
            raise ValueError("max_children and max_clusters must be at least 1")
        self.depth = depth
        self.similarity_threshold = similarity_threshold
        self.max_children = max_children
        self.max_clusters = max_clusters
        self._clusters: dict[int, Cluster] = {}
        # Token count -> the subtree for lines of that length.
        self._roots: dict[int, _Node] = {}

    # Public interface.

    def clusters(self) -> list[Cluster]:
        """Return the clusters, ordered by id."""
        return [self._clusters[key] for key in sorted(self._clusters)]

    def lookup(self, tokens: Sequence[str]) -> tuple[Cluster | None, bool]:
        """Return, without changing anything, where learn() would put the line.

        The first item is the cluster that learn() would add the line to,
        or None when learn() would start a new one. The second is True when
        learn() would change that cluster's template.
        """
        cluster = self._match(tokens)
        if cluster is None:
            return None, False
        return cluster, _merge(cluster.tokens, tokens) != cluster.tokens

    def learn(self, tokens: Sequence[str], new_id: int) -> tuple[Cluster, bool]:
        """Add the line, and return its cluster and whether it is new or changed.

        A new cluster gets new_id, which must not be in use.
        """
        cluster = self._match(tokens)
        if cluster is None:
            if new_id in self._clusters:
                raise ValueError(f"cluster id {new_id} is already in use")
            cluster = Cluster(new_id, list(tokens))
            self._add(cluster)
            return cluster, True
        merged = _merge(cluster.tokens, tokens)
        if merged == cluster.tokens:
            return cluster, False
        self._remove(cluster)
        cluster.tokens = merged
        self._add(cluster)
        return cluster, True

    def restore(self, cluster_id: int, tokens: Sequence[str]) -> None:
        """Add a stored cluster with this template, or replace the one with its id."""
        old = self._clusters.get(cluster_id)
        if old is not None:
            self._remove(old)
        self._add(Cluster(cluster_id, list(tokens)))

    # Matching.

    def _match(self, tokens: Sequence[str]) -> Cluster | None:
        leaf = self._find_leaf(tokens)
        candidates: Iterable[Cluster] = leaf.clusters.values() if leaf else ()
        best = self._most_similar(candidates, tokens, self.similarity_threshold)
        if best is not None or len(self._clusters) < self.max_clusters:
            return best
        # Full: join the closest cluster of the same length, if there is one.
        # NOTE: this scans every cluster of that length, so lines that match
        # nothing cost O(max_clusters) each once the limit is reached.
        same_length = [
            c for c in self._clusters.values() if len(c.tokens) == len(tokens)
        ]
        return self._most_similar(same_length, tokens, -1.0)

    def _find_leaf(self, tokens: Sequence[str]) -> _Node | None:
        node = self._roots.get(len(tokens))
        while node is not None and node.position is not None:
            key = _route_key(tokens[node.position])
            child = node.children.get(key) if key in node.selected else None
            node = child if child is not None else node.children.get(WILDCARD)
        return node

    @staticmethod
    def _most_similar(
        candidates: Iterable[Cluster], tokens: Sequence[str], threshold: float
    ) -> Cluster | None:
        best: Cluster | None = None
        best_key: tuple[float, int, int] | None = None
        for cluster in candidates:
            similarity, wildcards = _similarity(cluster.tokens, tokens)
            if similarity < threshold:
                continue
            # Higher similarity first, then more wildcards, then the lowest id.
            key = (similarity, wildcards, -cluster.id)
            if best_key is None or key > best_key:
                best, best_key = cluster, key
        return best

    # Tree upkeep. Every change goes through _add and _remove, which keep
    # each node's children a function of the clusters below it.

    def _add(self, cluster: Cluster) -> None:
        self._clusters[cluster.id] = cluster
        length = len(cluster.tokens)
        root = self._roots.get(length)
        if root is None:
            root = self._roots[length] = self._new_node(0, length)
        self._insert(root, cluster)

    def _remove(self, cluster: Cluster) -> None:
        del self._clusters[cluster.id]
        length = len(cluster.tokens)
        root = self._roots[length]
        self._delete(root, cluster)
        if _is_empty(root):
            del self._roots[length]

    def _new_node(self, level: int, length: int) -> _Node:
        # Level counts the routing tokens used so far. A node routes on the
        # next token while tokens and routing levels remain.
        if level < self.depth - 2 and level < length:
            return _Node(level)
        return _Node(None)

    def _insert(self, node: _Node, cluster: Cluster) -> None:
        if node.position is None:
            node.clusters[cluster.id] = cluster
            return
        key = _route_key(cluster.tokens[node.position])
        if key != WILDCARD:
            node.token_ids.setdefault(key, set()).add(cluster.id)
            self._reselect(node, skip=cluster.id)
        self._insert(self._child(node, key, cluster), cluster)

    def _delete(self, node: _Node, cluster: Cluster) -> None:
        if node.position is None:
            del node.clusters[cluster.id]
            return
        key = _route_key(cluster.tokens[node.position])
        branch = key if key in node.selected else WILDCARD
        child = node.children[branch]
        self._delete(child, cluster)
        if _is_empty(child):
            del node.children[branch]
        if key != WILDCARD:
            ids = node.token_ids[key]
            ids.discard(cluster.id)
            if not ids:
                del node.token_ids[key]
            self._reselect(node, skip=None)

    def _child(self, node: _Node, key: str, cluster: Cluster) -> _Node:
        branch = key if key in node.selected else WILDCARD
        child = node.children.get(branch)
        if child is None:
            assert node.position is not None
            child = node.children[branch] = self._new_node(
                node.position + 1, len(cluster.tokens)
            )
        return child

    def _reselect(self, node: _Node, skip: int | None) -> None:
        """Give a child to the max_children literal keys with the lowest ids.

        Clusters whose key gains or loses its own child move between that
        child and the wildcard child. skip is a cluster already counted in
        token_ids but not yet placed below the node.
        """
        if len(node.token_ids) <= self.max_children:
            chosen = set(node.token_ids)
        else:
            ranked = sorted(node.token_ids, key=lambda k: (min(node.token_ids[k]), k))
            chosen = set(ranked[: self.max_children])
        if chosen == node.selected:
            return
        dropped = node.selected - chosen
        gained = chosen - node.selected
        moving_out = [
            self._clusters[i]
            for key in dropped
            for i in node.token_ids.get(key, ())
            if i != skip
        ]
        for key in dropped:
            node.children.pop(key, None)
        moving_in = [
            self._clusters[i]
            for key in gained
            for i in node.token_ids[key]
            if i != skip
        ]
        wild = node.children.get(WILDCARD)
        for cluster in moving_in:
            assert wild is not None
            self._delete(wild, cluster)
        if wild is not None and _is_empty(wild):
            del node.children[WILDCARD]
        node.selected = chosen
        for cluster in moving_out + moving_in:
            assert node.position is not None
            key = _route_key(cluster.tokens[node.position])
            self._insert(self._child(node, key, cluster), cluster)


def _is_empty(node: _Node) -> bool:
    if node.position is None:
        return not node.clusters
    return not node.children


def _similarity(template: Sequence[str], tokens: Sequence[str]) -> tuple[float, int]:
    """Return the share of positions where the line equals the template, and
    the template's wildcard count.

    A template wildcard matches the line only where the line has a masked
    value there too, so a line of other words is not drawn into a template
    that has already generalized many positions. The share is -1 when the
    two differ at a position where both hold identifiers (see
    _is_identifier): log statements write class, method and enum names
    literally, so two different names there mean two different statements.
    """
    same = 0
    wildcards = 0
    for expected, actual in zip(template, tokens, strict=True):
        if expected == actual:
            same += 1
        elif _is_identifier(expected) and _is_identifier(actual):
            return -1.0, 0
        if expected == WILDCARD:
            wildcards += 1
    if not template:
        return 1.0, 0
    return same / len(template), wildcards


# An upper-case word such as NEW, HRESULT or CBS_E_INVALID_PACKAGE, or a
# camelCase or PascalCase name such as TaskAttempt or setVisibility, with
# any punctuation around it.
_IDENTIFIER = re.compile(
    r"[^A-Za-z]*(?:[A-Z][A-Z0-9_]+|[A-Za-z][a-z0-9]*[a-z0-9][A-Z]\w*)[^A-Za-z]*"
)


@functools.lru_cache(maxsize=65536)
def _is_identifier(token: str) -> bool:
    return WILDCARD not in token and _IDENTIFIER.fullmatch(token) is not None


def _merge(template: Sequence[str], tokens: Sequence[str]) -> list[str]:
    return [
        expected if expected == actual else WILDCARD
        for expected, actual in zip(template, tokens, strict=True)
    ]
