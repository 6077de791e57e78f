"""Shared runs for the export, split and report tests (generated once per session, copied when changed)."""

import shutil

import pytest

from tests.exports.helpers import make_run, score_by_hand


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory):
    """12 scene.shapes items, two questions per image (so items share Specs); not scored."""
    return make_run(tmp_path_factory.mktemp("gen") / "run", n=12, per_image=2)


@pytest.fixture(scope="session")
def scored_run(tmp_path_factory, generated_run):
    """The generated run with hand-written Deltas (every 4th item zero-Δ)."""
    run = tmp_path_factory.mktemp("scored") / "run"
    shutil.copytree(generated_run, run)
    score_by_hand(run)
    return run


@pytest.fixture
def run_copy(tmp_path, generated_run):
    """A private copy of the generated run, for tests that add files to it."""
    run = tmp_path / "run"
    shutil.copytree(generated_run, run)
    return run
