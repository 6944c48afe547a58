"""A fast, real studio config for the Recommendations-and-effect page and the report.

Real ml-100k, a GRU4Rec base trained for one epoch and an LLMRG fused model
trained for three, on the LLM-free genre graphs of a 24-user sample written to a
graph directory (``[fusion] graphs = <dir>``): users outside the sample have no
graph, which is the "no graph yet" case. Training happens once per test module
(the runs are saved in the config's data_dir and reused).
"""

from __future__ import annotations

from pathlib import Path

from models.data import Dataset
from models.fusion.samples import sample_users
from models.genre_graphs import GenreGraphSource
from models.graph_sources import write_graph_file
from models.protocol import leave_one_out
from tests.app.hostile_data import write_config

USERS = 24
SEED = 7  # a sample where two epochs beat the identity start (a visible effect)


def fast_toml(graphs_dir: Path) -> str:
    """The ``[fusion]``, ``[models.gru4rec]`` and ``[train]`` sections for seconds-long training."""
    return (f'[fusion]\ngraphs = "{graphs_dir}"\nusers = {USERS}\nseed = {SEED}\nepochs = 3\n'
            'patience = 3\ntrain_steps = 4\nlearning_rate = 0.02\nbase_model = "gru4rec"\n'
            'random_orders = 3\nmax_paths = 6\n'
            '[models.gru4rec]\nembedding_size = 16\nhidden_size = 16\nmax_len = 20\n'
            '[train]\nepochs = 1\nprogress = false\ndevice = "cpu"\n')


def write_sample_graphs(dataset: Dataset, directory: Path) -> list[str]:
    """Genre graphs of the sampled users, one JSON file each; returns their ids."""
    split = leave_one_out(dataset)
    source = GenreGraphSource(dataset, split.train)
    users = [dataset.user_ids[int(u)] for u in sample_users(split, USERS, SEED)]
    for user in users:
        write_graph_file(directory, source.get(user))
    return users


def write_fast_config(dataset: Dataset, data_path: Path, workdir: Path) -> tuple[Path, list[str]]:
    """A studio TOML under ``workdir`` and the ids of the users who have a graph."""
    users = write_sample_graphs(dataset, workdir / "graphs")
    config = write_config(workdir / "studio.toml", data_path, workdir / "data",
                          fast_toml(workdir / "graphs"))
    return config, users
