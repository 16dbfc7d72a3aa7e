import json
import multiprocessing as mp

from whisper_studio import runfolder
from whisper_studio.runfolder import RunStatus


def _append_many(run_dir, worker, n):
    for i in range(n):
        runfolder.append_metric(run_dir, {"type": "train", "worker": worker, "step": i, "pad": "x" * 500})


def test_metrics_lines_stay_whole_under_concurrent_appends(tmp_path):
    procs = [mp.get_context("spawn").Process(target=_append_many, args=(tmp_path, w, 200)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    records = runfolder.read_metrics(tmp_path)
    assert len(records) == 400
    assert sorted(r["step"] for r in records if r["worker"] == 0) == list(range(200))


def test_a_half_written_last_line_is_not_read(tmp_path):
    runfolder.append_metric(tmp_path, {"step": 1})
    with open(tmp_path / runfolder.METRICS, "a") as f:
        f.write('{"step": 2, "lo')
    assert runfolder.read_metrics(tmp_path) == [{"step": 1}]


def test_status_round_trip_and_atomic_replace(tmp_path):
    assert runfolder.read_status(tmp_path) is None
    runfolder.write_status(tmp_path, RunStatus(state="running", pid=123, step=4, total_steps=10))
    status = runfolder.read_status(tmp_path)
    assert (status.state, status.pid, status.step, status.total_steps) == ("running", 123, 4, 10)
    assert status.updated is not None
    # No temporary files are left next to it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
    data = json.loads((tmp_path / "status.json").read_text())
    data["future_field"] = 1  # a newer job version's extra field does not break an older reader
    (tmp_path / "status.json").write_text(json.dumps(data))
    assert runfolder.read_status(tmp_path).state == "running"


def test_tail_log(tmp_path):
    assert runfolder.tail_log(tmp_path) == ""
    (tmp_path / "train.log").write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert runfolder.tail_log(tmp_path, lines=3) == "line 97\nline 98\nline 99"
