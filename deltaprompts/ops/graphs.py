"""Ops over a drawn network: the edges of `Facts.extra["edges"]` ([from, to] or [from, to, weight], ids of
nodes; `extra["directed"]` makes them one-way). An entity stands for node `attrs["node"]` if it has one
(a maze's marked cell), else for the node of its own id (a graph's node). Used by scene.graph and scene.maze."""

from __future__ import annotations

from typing import Any

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.programs import op
from deltaprompts.records import Entity, Facts

BY = ("edges", "weight")


def network(facts: Facts) -> Any:
    """The networkx graph of the Facts' edges (a DiGraph when directed); raises ProgramError without edges.
    Built once per Facts within engine.memo() (the ops only read it)."""
    return engine.cached("ops.graphs.network", facts, lambda: _network(facts))


def _network(facts: Facts) -> Any:
    # networkx is imported here, not at module load: every op module loads with the op registry
    import networkx as nx

    edges = facts.extra.get("edges")
    if not isinstance(edges, list):
        raise ProgramError("missing_field", "these Facts draw no network (no extra['edges'])")
    g = nx.DiGraph() if facts.extra.get("directed") else nx.Graph()
    g.add_nodes_from(facts.extra.get("nodes") or [])
    g.add_nodes_from(str(e.attrs.get("node", e.id)) for e in facts.entities)
    for e in edges:
        g.add_edge(str(e[0]), str(e[1]), weight=float(e[2]) if len(e) > 2 else 1.0)
    return g


def _node(e: Entity) -> str:
    return str(e.attrs.get("node", e.id))


def _weight(facts: Facts, by: str) -> str | None:
    if by == "weight":
        if not facts.extra.get("weighted"):
            raise ProgramError("degenerate", "the edges carry no weights")
        return "weight"
    return None


def _distances(facts: Facts, source: Entity, by: str) -> dict[str, float]:
    import networkx as nx

    g = network(facts)
    w = _weight(facts, by)
    return nx.single_source_dijkstra_path_length(g, _node(source), weight=w) if w else \
        dict(nx.single_source_shortest_path_length(g, _node(source)))


@op("path_exists", ("entity", "entity"), "bool")
def _path_exists(facts: Facts, p: dict, a: Entity, b: Entity) -> bool:
    """Whether the network has a path from a to b (following arrows when directed)."""
    import networkx as nx

    if a.id == b.id:
        raise ProgramError("degenerate", "a path from a node to itself")
    return nx.has_path(network(facts), _node(a), _node(b))


@op("shortest_path_length", ("entity", "entity"), "number", {"by": "str"}, choices={"by": BY},
    gradient=lambda xs: [])
def _shortest(facts: Facts, p: dict, a: Entity, b: Entity) -> float:
    """The fewest edges (by=edges) or least total weight (by=weight) of a path from a to b; an error when none."""
    if a.id == b.id:
        raise ProgramError("degenerate", "a path from a node to itself")
    dist = _distances(facts, a, p["by"])
    if _node(b) not in dist:
        raise ProgramError("no_path", f"no path from {a.id} to {b.id}")
    v = dist[_node(b)]
    return int(v) if float(v).is_integer() else v


@op("reachable", ("entity",), "set")
def _reachable(facts: Facts, p: dict, a: Entity) -> list[Entity]:
    """The other entities a path leads to from a (following arrows when directed)."""
    import networkx as nx

    seen = nx.descendants(network(facts), _node(a)) if facts.extra.get("directed") else \
        nx.node_connected_component(network(facts), _node(a)) - {_node(a)}
    return [e for e in facts.entities if e.id != a.id and _node(e) in seen]


@op("closest", ("set", "entity"), "entity", {"by": "str"}, choices={"by": BY})
def _closest(facts: Facts, p: dict, s: list[Entity], source: Entity) -> Entity:
    """The entity of s nearest to source along the network (fewest edges or least weight); an error when
    one cannot be reached or two are equally near."""
    cands = [e for e in s if e.id != source.id]
    if len(cands) < 2:
        raise ProgramError("degenerate", f"need two candidates besides the source, got {len(cands)}")
    dist = _distances(facts, source, p["by"])
    if any(_node(e) not in dist for e in cands):
        raise ProgramError("no_path", "a candidate cannot be reached from the source")
    ranked = sorted(cands, key=lambda e: dist[_node(e)])
    if dist[_node(ranked[0])] == dist[_node(ranked[1])]:
        raise ProgramError("tie", f"{ranked[0].id} and {ranked[1].id} are equally near")
    return ranked[0]
