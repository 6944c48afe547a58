"""Every ``st.session_state`` key of the app, in one module (#20).

Two pages that share a value (the Reasoning page's graph, the node clicked there) read
the same name from here, never a copy of its string. Widget keys are session-state keys
too (Streamlit keeps a widget's value under its key), so they live here as well: a
constant, or a function for the keys made per user, point or item. The keys of
display-only elements (``st.container(key=...)``, the CSS hooks the browser tests
select, and tables without a selection) are not session state and stay where they are
drawn.
"""

from __future__ import annotations

# ------------------------------------------------------------ shared by every page
CURRENT_USER = "rr_current_user"
# {"user": str, "films": int}: the point in the history, on one scale for every page
CURRENT_POINT = "rr_current_point"
URL_SEEN = "rr_url_seen"                # the (user, step) this session last read or wrote
REASONING_OVERRIDES = "rr_reasoning_overrides"   # the Settings page's [reasoning] overrides
SELECTED_NODE = "rr_selected_node"      # {"user", "node"}: the node selected on Reasoning


def built_graph(user: str) -> str:
    """The graph built on the Reasoning page for ``user`` (Recommendations explains it)."""
    return f"rr_graph_{user}"


def graph_origin(user: str) -> str:
    """Where the Reasoning page's graph for ``user`` came from, in words."""
    return f"rr_graph_source_{user}"


def loaded_graph(user: str) -> str:
    """A stored graph the Reasoning page loaded for ``user`` (not one built there)."""
    return f"rr_reasoning_loaded_{user}"


# ------------------------------------------------------------ Session explorer
EXPLORER_FIND_BY = "explorer_find_by"
EXPLORER_USER = "explorer_user"
EXPLORER_MOVIE = "explorer_movie"
EXPLORER_MOVIE_USER = "explorer_movie_user"
EXPLORER_SEARCH = "explorer_film_search"


def explorer_point(user: str) -> str:
    return f"explorer_point_{user}"


def explorer_jump(position: int) -> str:
    """The "Window before it" button of the film at 0-based history ``position``."""
    return f"explorer_jump_{position}"


# ------------------------------------------------------------ Reasoning
REASONING_USER = "reasoning_user"
REASONING_HTML = "rr_reasoning_html"    # (what it was drawn from, the graph document)
REASONING_BUILD = "reasoning_build"
REASONING_SHOW_REJECTED = "reasoning_show_rejected"
REASONING_SHOW_TARGET = "reasoning_show_target"


def reasoning_point(user: str) -> str:
    return f"reasoning_step_{user}"


def reasoning_node(user: str) -> str:
    """The "Selected node" box (and the node the graph shows as selected)."""
    return f"reasoning_node_{user}"


def reasoning_graph(user: str) -> str:
    """The clickable graph component's value."""
    return f"reasoning_graph_{user}"


# ------------------------------------------------------------ Recommendations
EFFECT_USER = "user"
EFFECT_CACHE = "effect_cache"           # this session's scored point (fast toggles)
EFFECT_FOLLOWED = "effect_followed_node"   # the Reasoning page's node already followed
EFFECT_LIVE = "effect_live"             # rows + counterfactual state shared with the fragment
EFFECT_RESTORE = "effect_restore"
EFFECT_SHOW_HIDDEN = "effect_show_hidden_paths"
EFFECT_REPORT_HTML = "effect_report_html"
EFFECT_REPORT_JSON = "effect_report_json"
STRATEGY_A = "effect_strategy_a"
STRATEGY_B = "effect_strategy_b"


def effect_point(user: str) -> str:
    return f"effect_step_{user}"


def effect_item(user: str) -> str:
    """The explained film (its catalogue index)."""
    return f"effect_item_{user}"


def effect_chart(user: str) -> str:
    """The rank-shift chart's selection."""
    return f"effect_chart_{user}"


def effect_off(user: str, step: int) -> dict[str, str]:
    """The counterfactual switches' keys, per user and point."""
    return {kind: f"effect_off_{kind}_{user}_{step}" for kind in ("chains", "nodes", "items")}


def effect_path(item: int, number: int) -> str:
    """The facts expander of path ``number`` of film ``item``."""
    return f"effect_path_{item}_{number}"


# ------------------------------------------------------------ Evaluation
EVAL_OUTCOMES = "rr_eval_outcomes"      # (fused run directory, per-user rows)
EVAL_FUSION_METRIC = "eval_fusion_metric"
EVAL_OUTCOME = "eval_outcome"
EVAL_GENRE = "eval_genre"
EVAL_LENGTH = "eval_length"
EVAL_PASS_RATE = "eval_pass_rate"
EVAL_USERS = "eval_users"               # the per-user table's row selection

# ------------------------------------------------------------ Knowledge base
KB_KIND = "kb_kind"
KB_SEARCH = "kb_search"
KB_PAGE = "kb_page"
KB_EXPORT = "kb_export"
KB_CONFIRM = "kb_confirm"
KB_CLEAR = "kb_clear"

# ------------------------------------------------------------ Settings
SETTINGS_WAS_RESET = "settings_was_reset"
SETTINGS_BACKEND = "settings_backend"
SETTINGS_MODEL = "settings_model"
SETTINGS_URL = "settings_url"
SETTINGS_LAYERS = "settings_layers"
SETTINGS_TEMPERATURE = "settings_temperature"
SETTINGS_TAU = "settings_tau"
SETTINGS_L_TRU = "settings_l_tru"
SETTINGS_K = "settings_k"
SETTINGS_R = "settings_r"
SETTINGS_RESET = "settings_reset"
SETTINGS_CHECK = "settings_check"
