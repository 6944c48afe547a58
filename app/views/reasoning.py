"""Reasoning: the LLM reasoning graph (LLMRG) of the chosen user's session window.

A graph that was already built (this browser session, the reasoning graph
store, or the fused model's graph source: shipped bundle) loads instantly;
"Build reasoning graph" builds one on the local LLM with live progress per
stage and the LLM's text streamed as it comes, then saves it to the store so
the other pages (and the fused model) find it. Clicking a node in the graph
selects it here and shows its details.

Graphs cover the window before the user's test target (what the fused model
reads); an earlier point is a step inside that window (its prefix graph).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd
import streamlit as st

from app.components.build_progress import LiveBuild, draw_progress, per_build_builder, wait_for_load
from app.components.graph_select import graph_select
from app.components.build_log_view import offload_state, stage_rows, tokens_per_second
from app.components.node_details import details_html, node_details, node_label
from app.components.reasoning_view import TARGET_ID, reasoning_graph_html, visible_nodes
from app.components.explanation_view import chain_name
from app.components.pickers import clamp_note, point_picker, user_picker
from app.graph_html import OfflineHTMLError
from reasonrec.reasoning_api import BackendInfo, chain_records
from app import keys
from app.state import (
    builder_load,
    llm_problem,
    peek_builder_load,
    reasoning_config,
    studio_or_stop,
)

GRAPH_HEIGHT = 480
# A graph built on this page goes under keys.built_graph: the Recommendations page reads it
# and says "built on the Reasoning page"; a graph only loaded from the store or the graph
# source stays under keys.loaded_graph, since that page reads those sources itself.


def catalogue_lookup(index: int) -> Any:
    """The catalogue item at a dense index (1..n); ``IndexError`` outside it."""
    catalogue = dataset.catalogue
    if not 1 <= index <= len(catalogue):
        raise IndexError(index)
    return catalogue[index]


def load_existing(user: str) -> tuple[nx.DiGraph | None, str]:
    """A graph built before: the reasoning store first, then the fused model's graph source.

    Raises:
        GraphFormatError: the store's file for ``user`` is not a valid graph.
    """
    from reasonrec.reasoning_api import GraphStoreError

    store = studio.graph_store(rconfig)
    try:
        graph = store.load(user)
    except GraphStoreError as exc:   # a user id that cannot name a file: nothing stored
        st.caption(f"The graph store was not read: {exc}")
        graph = None
    if graph is not None:
        return graph, f"this machine's saved graphs ({store.path(user)})"
    try:
        graph, source = studio.fusion_graph(user)
    except Exception as exc:  # a missing bundle or a bad source: the build button still works
        st.caption(f"The fused model's graph source was not read: {exc}")
        return None, ""
    return graph, (f"the graphs the fused model reads ({source})" if graph is not None else "")


def save_to_store(graph: nx.DiGraph) -> str | None:
    """Save a fresh graph where the other pages and the fused model look; returns the path."""
    from reasonrec.reasoning_api import GraphStoreError

    store = studio.graph_store(rconfig)
    try:
        manifest = store.manifest()
        if manifest is not None and manifest.get("dataset") != dataset.name:
            st.warning(f"Not saved: {store.directory} holds graphs of dataset "
                       f"{manifest.get('dataset')!r}. The graph stays in this browser session.")
            return None
        return str(store.save(graph))
    except (OSError, GraphStoreError) as exc:
        st.warning(f"The graph was built but not saved ({exc}); it stays in this browser "
                   "session. Check that the data directory is writable.")
        return None


def build_graph(user: str) -> nx.DiGraph | None:
    """Build on the local LLM with live progress; errors become ``st.error`` (returns None).

    The LLM and the text encoder load in the background from app start; a build that comes
    before they are ready shows the load's progress first, and then reports the load time
    and the build time apart.
    """
    from reasonrec.reasoning_api import EmptySessionError

    try:
        load = builder_load()
    except ValueError as exc:   # a setting made invalid since it was applied
        st.error(f"A setting is not valid: {exc}. Fix it on the **Settings** page.")
        return None
    waited = not load.done
    problem: str | None = None
    label = "Loading the local LLM and the text encoder…" if waited else \
        "Building the reasoning graph on the local LLM…"
    with st.status(label, expanded=True) as status:
        if waited:
            wait_for_load(load, status)
        if load.error is not None:
            status.update(label="The LLM could not be loaded", state="error",
                          expanded=False)
            problem = llm_problem(load.error, rconfig)
        else:
            boxes = {"stages": st.empty(), "kb": st.empty(), "stream": st.empty()}
            live = LiveBuild(redraw=lambda state: draw_progress(state, boxes))
            try:
                builder = per_build_builder(load.builder, live.on_lookup)
                graph = builder.build(session, on_token=live.on_token)
            except EmptySessionError as exc:
                status.update(label="Nothing to build", state="error", expanded=False)
                problem = f"{exc}. Pick a user with at least two interactions."
            except Exception as exc:  # the analyst gets what to do next, never a traceback
                status.update(label="The build failed", state="error", expanded=False)
                problem = "Building the graph failed. " + llm_problem(exc, rconfig)
            else:
                live.finish()
                log = graph.graph["build_log"]
                built = (f"{log.wall_seconds:.1f} s ({log.llm_calls} LLM calls, "
                         f"{log.kb_hits} KB hits)")
                status.update(label=(f"Model loaded in {load.seconds:.1f} s; reasoning graph "
                                     f"built in {built}") if waited else
                              f"Reasoning graph built in {built}",
                              state="complete", expanded=False)
    if problem is not None:
        st.error(problem)   # outside the status box, so a collapsed box cannot hide it
        return None
    return graph


def show_build_facts(graph: nx.DiGraph, source: str) -> None:
    """Calls made, knowledge-base hits, tokens/s and the GPU offload (costs: see Details)."""
    log = graph.graph["build_log"]
    st.caption(f"Graph from {plain_source(source)}.")
    cols = st.columns(5)
    cols[0].metric("LLM calls", log.llm_calls, help=f"{log.retries} retries included")
    cols[1].metric("Knowledge-base hits", log.kb_hits, help=f"{log.kb_misses} misses")
    rate = tokens_per_second(log)
    cols[2].metric("Tokens/s", f"{rate:.1f}" if rate else "—",
                   help=f"{log.tokens_out} tokens generated in {log.llm_seconds:.1f} s of LLM time "
                        f"({log.tokens_in} prompt tokens)")
    cols[3].metric("Build time", f"{log.wall_seconds:.1f} s")
    backend = BackendInfo.from_dict(log.backend)
    cols[4].metric("Backend", backend.kind.value)
    st.caption(f"GPU offload: {offload_state(backend)}.")


def plain_source(source: str) -> str:
    """Where a graph came from, without its folder (that goes to Details)."""
    return source.split(" (", 1)[0].split(", saved to ", 1)[0]


def show_details(graph: nx.DiGraph, source: str) -> None:
    """The page's one technical expander: where the graph is, costs per stage, drops, ids."""
    log = graph.graph["build_log"]
    with st.expander("Details"):
        st.caption(f"Graph from {source}. Window length (`l_tru`): {rconfig.l_tru}; chains are "
                   f"kept when their check score is at least `tau` = {rconfig.tau:g}.")
        rows = stage_rows(log)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="reasoning-stages")
        if log.dropped:
            st.dataframe(pd.DataFrame([d.model_dump() for d in log.dropped]), hide_index=True,
                         key="reasoning-dropped")
        else:
            st.caption("The LLM produced every piece (nothing dropped).")


def chain_table(graph: nx.DiGraph, offset: int) -> pd.DataFrame:
    """One row per chain, in words: its films by their place in the history."""
    records = chain_records(graph)
    ids = [c.id for c in records]
    rows = [{"chain": chain_name(c.id, ids).capitalize(), "intent": c.intent,
             "films": ", ".join(str(offset + s + 1) for s in c.steps),
             "check score": c.score, "status": c.status}
            for c in records]
    return pd.DataFrame(rows)


def select_node(user: str, node: str) -> None:
    """A click in the graph (a component callback: runs before the page is drawn)."""
    st.session_state[keys.reasoning_node(user)] = node


def show_selection(graph: nx.DiGraph, options: list[str], user: str, clicked: str | None) -> None:
    """The selected node (a click in the graph or this box) and its details."""
    key = keys.reasoning_node(user)
    if clicked is not None and clicked in options:
        st.session_state[key] = clicked   # before the box is drawn: allowed
    if st.session_state.get(key) not in options:
        st.session_state[key] = None
    node = st.selectbox("Selected node", options, key=key, index=None,
                        format_func=lambda n: node_label(graph, n),
                        placeholder="Click a node in the graph…")
    if node is None:
        st.session_state.pop(keys.SELECTED_NODE, None)
        st.caption("Click a node in the graph (or pick one here) to see its reason, score, "
                   "step and source stage.")
        return
    st.session_state[keys.SELECTED_NODE] = {"user": user, "node": node}
    try:
        rows = node_details(graph, node, catalogue_lookup)
    except KeyError:
        st.warning("That node is not in this graph any more; pick another one.")
        return
    with st.container(key="reasoning-node-details"):
        st.html(details_html(rows))


# ----------------------------------------------------------------------- page

st.header("Reasoning")
studio = studio_or_stop()
dataset = studio.dataset
try:
    rconfig = reasoning_config(studio)
except ValueError as exc:
    st.error(f"A reasoning setting is not valid: {exc}. Fix it on the **Settings** page.")
    st.stop()

controls, _ = st.columns([2, 1])
with controls:
    user = user_picker(studio, keys.REASONING_USER, "User id")

from reasonrec.reasoning_api import (EmptySessionError, GraphFormatError,  # noqa: E402
                                     prefix_graph, session_window)

try:
    session = session_window(dataset, user, rconfig.l_tru)
except EmptySessionError as exc:
    st.error(f"{exc}. Pick a user with at least two interactions.")
    st.stop()
except (KeyError, ValueError) as exc:
    st.error(f"Cannot reason about user {user}: {exc}. Pick another user.")
    st.stop()

first = session.target_position - len(session.items) + 1
st.caption(f"User **{user}**: the reasoning covers films {first}–{session.target_position}, the "
           f"last {len(session.items)} before film {session.target_position + 1}, which the test "
           "holds out and the LLM never sees.")

graph_key, source_key = keys.built_graph(user), keys.graph_origin(user)
build_clicked = st.button("Build reasoning graph", key=keys.REASONING_BUILD, type="primary",
                          help="Runs the chain, verify and diverge stages on the local LLM (KB "
                               "answers are reused). Replaces the stored graph of this user.")
# Always drawn, so the elements below keep their place in the page whether or not a
# build ran in this rerun (a moved element is remounted: the graph would reload).
build_area = st.container(key="reasoning-build-area")
if build_clicked:
    with build_area:
        built = build_graph(user)
        path = save_to_store(built) if built is not None else None
    if built is not None:
        st.session_state[graph_key] = built
        st.session_state[source_key] = ("a build just now" + (f", saved to {path}" if path else
                                                              ", not saved"))
        st.session_state.pop(keys.REASONING_HTML, None)

loaded_key = keys.loaded_graph(user)
graph: nx.DiGraph | None = st.session_state.get(graph_key)
if graph is None:
    graph = st.session_state.get(loaded_key)
source = st.session_state.get(source_key, "this browser session")
if graph is None:
    try:
        graph, source = load_existing(user)
    except GraphFormatError as exc:
        st.error(f"The stored reasoning graph of user {user} is damaged: {exc}. Press "
                 "**Build reasoning graph** to rebuild it (that replaces the file), or delete "
                 "the file.")
        st.stop()
    if graph is not None:
        st.session_state[loaded_key] = graph
        st.session_state[source_key] = source

if graph is None:
    st.info(f"No reasoning graph for user {user} yet. Press **Build reasoning graph** to build one "
            "on the local LLM; each stage shows its progress while it runs.")
    pending = peek_builder_load()
    if pending is not None and not pending.done:
        st.caption(f"The local LLM and the text encoder are loading in the background "
                   f"({pending.step}, {pending.seconds:.0f} s so far); a build started now "
                   "waits for them and shows the load's progress.")
    st.stop()

window_ids = [item.item_id for item in session.items]
if list(graph.graph.get("window_item_ids") or []) != window_ids:
    st.warning("This graph was built for another window of this user (other settings or data). "
               "Press **Build reasoning graph** to reason about the current window.")

show_build_facts(graph, source)

length = len(graph.graph.get("window") or [])
# One scale on every page: films watched; the graph covers the window before the test film.
offset = session.target_position - length
opts = st.columns([2, 1, 1])
with opts[0]:
    chosen = point_picker(user, offset + 1, offset + length, offset + length,
                          keys.reasoning_point(user),
                          help="Show the graph as it stood at this point: what the LLM had "
                               "reasoned from the films watched so far.")
    step = chosen.films - offset
note = clamp_note(chosen, offset + 1, offset + length, "the reasoning graph")
if note:
    st.caption(note)
with opts[1]:
    show_rejected = st.toggle("Show rejected chains", value=False, key=keys.REASONING_SHOW_REJECTED,
                              help="Chains that did not pass the LLM's check are hidden by "
                                   "default; shown, they are dashed.")
with opts[2]:
    show_target = st.toggle("Show the true next item", value=True, key=keys.REASONING_SHOW_TARGET,
                            help="Drawn for error analysis only: never seen by the models.")

view = graph if step >= length else prefix_graph(graph, step - 1)
cache_key = (user, id(graph), step, show_rejected, show_target)
cached = st.session_state.get(keys.REASONING_HTML)
try:
    if cached is not None and cached[0] == cache_key:
        document = cached[1]
    else:
        document = reasoning_graph_html(view, show_rejected=show_rejected, height_px=GRAPH_HEIGHT,
                                        lookup=catalogue_lookup, show_target=show_target)
        st.session_state[keys.REASONING_HTML] = (cache_key, document)
except OfflineHTMLError as exc:
    st.error(f"The graph was not shown because it would load remote resources ({exc}). Report "
             "this as a bug; the tables below still list the reasoning.")
    document = None

options = visible_nodes(view, show_rejected)
if show_target and view.graph.get("target") is not None:
    options.append(TARGET_ID)
graph_col, detail_col = st.columns([2, 1])
clicked = None
with graph_col:
    if document is not None:
        with st.container(key="reasoning-graph"):
            clicked = graph_select(document, key=keys.reasoning_graph(user),
                                   selected=st.session_state.get(keys.reasoning_node(user)),
                                   height=GRAPH_HEIGHT + 40, title="Reasoning graph",
                                   on_click=lambda node: select_node(user, node))
        st.caption("Click a node to select it; drag nodes or the canvas, scroll to zoom, hover "
                   "a node or an arrow for details (an arrow's tooltip holds the LLM's reason). "
                   "Arrow width and colour: how well the chain passed the LLM's check.")
with detail_col:
    show_selection(view, options, user, clicked)

st.subheader("Chains")
chains = chain_table(view, offset)
if chains.empty:
    st.caption("No chain in this graph.")
else:
    st.dataframe(chains, hide_index=True, key="reasoning-chains",
                 column_config={"check score": st.column_config.NumberColumn("check score",
                                                                             format="%.3f")})
show_details(graph, source)
