"""Progress: a bar on a terminal, plain lines in a log, nothing when disabled."""

import io
import logging

import pytest
from tqdm import tqdm

from dfl_vfx.progress import LineProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_tqdm_bar() -> None:
    stream = _Terminal()
    bar = progress_bar(range(3), desc="swap", unit="frame", stream=stream)
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1, 2]
    assert "\r" in stream.getvalue()


def test_log_gets_lines_every_n_items_and_no_carriage_returns(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()  # a redirected log: not a terminal
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    bar = progress_bar(range(48), desc="swap", unit="frame", enabled=True, min_interval=0, stream=stream)
    assert isinstance(bar, LineProgress)
    assert list(bar) == list(range(48))
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # every 5 frames (a tenth of 48, rounded up) and once at the end
    assert lines[0].startswith("swap: 5/48 frames (10%), ")
    assert lines[-1].startswith("swap: 48/48 frames (100%), ")
    assert "s left" in lines[0] and "s left" not in lines[-1]
    assert all("\r" not in line for line in lines)


def test_update_postfix_and_unknown_total(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    with progress_bar(desc="train", unit="it", every=2, initial=10, min_interval=0, stream=io.StringIO()) as bar:
        for _ in range(5):
            bar.update(1)
            bar.set_postfix(src="0.1234")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("train: 12 its, ")
    assert lines[0].endswith("src 0.1234")
    assert lines[-1].startswith("train: 15 its, ")
    assert len(lines) == 3


def test_disabled_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    terminal = _Terminal()
    assert list(progress_bar(range(20), desc="x", enabled=False, stream=terminal)) == list(range(20))
    assert terminal.getvalue() == ""
    assert caplog.records == []


def test_a_fast_short_job_is_not_a_line_per_item(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    assert list(progress_bar(range(8), desc="load src", unit="face", stream=io.StringIO())) == list(range(8))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("load src: 8/8 faces (100%)")
