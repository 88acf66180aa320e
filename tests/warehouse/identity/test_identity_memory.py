"""What a run may still allocate: the machine's available memory, lowered to a container's
cgroup limit; and a helper process given up when that runs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.warehouse.identity.linkage.test_bulk_paths import _rows
from tests.warehouse.identity.test_identity_resolve import S
from warehouse import memory
from warehouse.identity.linkage import features
from warehouse.identity.linkage import memo as memo_mod

GB = 2**30


def _machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cgroup: str, available: int) -> Path:
    """A fake /proc (this process's cgroup, the machine's available memory) and cgroup tree."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {available // 1024} kB\n")
    real_open, real_read = open, Path.read_text

    def fake_open(path: object, *a: object, **kw: object) -> object:
        if str(path) == "/proc/meminfo":
            return real_open(proc / "meminfo", *a, **kw)  # type: ignore[call-overload]
        return real_open(path, *a, **kw)  # type: ignore[call-overload]

    def fake_read(self: Path, *a: object, **kw: object) -> str:
        if str(self) == "/proc/self/cgroup":
            return real_read(proc / "cgroup")
        return real_read(self)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(Path, "read_text", fake_read)
    root = tmp_path / "cgroup"
    monkeypatch.setattr(memory, "CGROUP", root)
    return root


def _group(path: Path, **files: str) -> None:
    """A cgroup directory with its files (``memory_max`` is ``memory.max``)."""
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name.replace("_", ".", 1)).write_text(text)


def test_a_cgroup_v2_limit_lowers_what_the_machine_has_free(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _machine(monkeypatch, tmp_path, "0::/kubepods/pod1\n", available=20 * GB)
    group = root / "kubepods" / "pod1"
    _group(
        group,
        memory_max=f"{2 * GB}\n",
        memory_current=f"{GB + GB // 2}\n",
        memory_stat=f"anon 1\ninactive_file {GB // 4}\nactive_file 5\n",
    )
    # 2 GB − 1.5 GB in use + 0.25 GB of cache the kernel can drop.
    assert memory.free_memory() == GB // 2 + GB // 4
    (group / "memory.max").write_text("max\n")
    assert memory.free_memory() == 20 * GB  # no limit: the machine's figure


def test_a_cgroup_v1_limit_and_no_cgroup_at_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _machine(monkeypatch, tmp_path, "4:memory:/kz\n0::/\n", available=3 * GB)
    group = root / "memory" / "kz"
    _group(
        group,
        memory_limit_in_bytes=f"{8 * GB}\n",
        memory_usage_in_bytes=f"{GB}\n",
        memory_stat="total_inactive_file 0\n",
    )
    assert memory.free_memory() == 3 * GB  # the machine has less than the limit leaves
    (group / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert memory.free_memory() == 3 * GB
    (group / "memory.limit_in_bytes").write_text(f"{GB + 100}\n")
    assert memory.free_memory() == 100


def test_the_company_name_helper_is_given_up_when_memory_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A new company on every row: each range sends the helper names of its own.
    rows = [(*r[:8], f"株式会社テスト{k}", *r[9:]) for k, r in enumerate(_rows(240))]
    whole = features.compute(rows, S).features()
    monkeypatch.setattr(memo_mod, "PARALLEL_ROWS", 50)
    monkeypatch.setattr(memo_mod, "HELPER_BATCH", 1)
    monkeypatch.setenv("KIZUNA_IDENTITY_WORKERS", "2")
    asked: list[bool] = []
    free = iter([True, True, False])  # room for it twice, then none

    def room() -> bool:
        asked.append(next(free, False))
        return asked[-1]

    monkeypatch.setattr(memo_mod, "room", room)
    memo = memo_mod.Memo(S)
    try:
        parts = [features.compute(rows[a : a + 50], S, memo) for a in range(0, 240, 50)]
        assert memo._pool is None and not memo._may_help  # stopped, and not started again
        assert asked == [True, True, False]
    finally:
        memo.close()
    assert features.Columns.concat(parts).features() == whole
