"""``anonymize --workers N`` on one clip: N processes each run the whole avatar pipeline on one time
chunk (signanon.avatar.parallel), joined into one output; one calibration, cross-faded seams."""

from __future__ import annotations

import itertools
import json
import pickle
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from signanon.avatar.anonymizer import AvatarConfig
from signanon.avatar.chunk import CalibrateHere, Chunk, ChunkResult, Seams, WaitForCalibration, chunk_poses
from signanon.avatar.parallel import plan_chunks, render_in_parallel, warm_up_frames
from signanon.errors import InputError, NoPersonError
from signanon.summary import StageTimer
from signanon.video import VideoWriter, iter_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"


def looped_clip(path: Path, frames: int, *, tone_hz: float | None = None) -> Path:
    """The sample clip (540x720, 359/12 fps) played forward and back until ``frames`` frames: one
    continuous signer, as benchmarks/bench_batch.py makes; with ``tone_hz`` an AAC tone as long."""
    info = probe_video(SAMPLE)
    clip = list(iter_frames(info))
    frames_out = list(itertools.islice(itertools.cycle(clip + clip[-2:0:-1]), frames))
    if tone_hz is None:
        with VideoWriter(path, info.width, info.height, info.fps) as writer:
            for frame in frames_out:
                writer.write(frame)
        return path
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=info.fps)
        video.width, video.height, video.pix_fmt = info.width, info.height, "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono")
        for rgb in frames_out:
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
        samples = int(16000 * frames / float(info.fps))
        tone = (0.4 * np.sin(2 * np.pi * tone_hz * np.arange(samples) / 16000)).astype(np.float32)
        for start in range(0, samples - 1023, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024].copy(), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


def _no_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.startswith("signanon-"))


# -- the plan ----------------------------------------------------------------------------------


def test_the_face_gains_measured_by_one_chunk_reach_the_merged_result():
    measured = {"gains": {"mouth_opening": 0.9}, "rounds": {}, "frames": 16}
    merged = ChunkResult.merged([ChunkResult(frames=10, face_gains=measured), ChunkResult(frames=20)])
    assert merged.face_gains == measured and merged.frames == 30
    assert ChunkResult.merged([ChunkResult(), ChunkResult()]).face_gains == {}


def test_the_identity_guards_counts_of_the_chunks_add_up():
    look = {"chosen": "dark-skin", "scores": {"default": 0.61, "dark-skin": 0.7}}
    first = {"checked": 40, "unchecked": 0, "calmed": 3, "blanked": 2, "blurred": 0, "min_distance": 0.62, "look": look}
    later = {"checked": 30, "unchecked": 0, "calmed": 1, "blanked": 1, "blurred": 1, "min_distance": 0.6, "look": look}
    merged = ChunkResult.merged([ChunkResult(frames=100, identity_guard=first), ChunkResult(frames=90, identity_guard=later)])
    assert merged.identity_guard == {
        "checked": 70, "unchecked": 0, "calmed": 4, "blanked": 3, "blurred": 1, "min_distance": 0.6, "look": look,
    }  # fmt: skip
    assert ChunkResult.merged([ChunkResult(), ChunkResult()]).identity_guard == {}  # the guard was off


def test_chunks_cover_every_frame_once_and_share_the_work():
    config = AvatarConfig()
    warm_up = warm_up_frames(config, 30.0)
    assert warm_up == 0 + 9 + 9 + 10  # extra MediaPipe, gap filler, scale median window, seam
    assert warm_up_frames(config, 25.0) == warm_up  # the counts are tuned at 30 fps and used as they are below
    assert warm_up_frames(config, 59.94) == 0 + 17 + 18 + 20  # as many seconds at 60 fps
    chunks = plan_chunks(900, 2, warm_up)
    assert [(c.warm, c.start, c.stop) for c in chunks] == [(0, 0, 460), (432, 460, 900)]
    # the later chunk draws fewer frames: its 28 warm-up frames cost 0.7 of a drawn frame each
    assert abs(chunks[0].frames - chunks[1].frames - 0.7 * warm_up) <= 1
    three = plan_chunks(1000, 3, warm_up)
    assert [c.start for c in three] == [0, 346, 673] and three[-1].stop == 1000
    assert all(a.stop == b.start and b.warm == b.start - warm_up for a, b in zip(three, three[1:]))
    assert sum(c.frames for c in three) == 1000
    assert [(c.start, c.stop) for c in plan_chunks(300, 1, warm_up)] == [(0, 300)]
    assert config.workers_for(299) == 1 and AvatarConfig(landmark_workers=4).workers_for(450) == 3


# -- the seam ------------------------------------------------------------------------------------


def _seam_arms(folder: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The seam test's poses, computed in a fresh process as the workers compute them: arms
    (shoulders, elbows, wrists; (120, 6, 2) output px) of the one-process avatar and of the
    two-chunk one, the first chunk's stop and the second's start."""
    tmp = Path(folder)
    info = probe_video(looped_clip(tmp / "clip.mp4", 120))
    config = AvatarConfig()
    first, second = plan_chunks(120, 2, warm_up_frames(config, info.fps))
    assert first.stop < config.calibration_window(info.fps)  # worker 0 must read on to calibrate
    animator = tmp / "animator.pkl"
    one = [pose for _, pose in chunk_poses(info, config, Chunk(0, 0, 0, 120), CalibrateHere(info, config, StageTimer(), animator), StageTimer(), ChunkResult())]  # fmt: skip
    seams = Seams(tmp, config.seam_window(info.fps), 2)
    later = list(seams.drawn(chunk_poses(info, config, second, WaitForCalibration(animator, StageTimer()), StageTimer(), ChunkResult()), second, StageTimer()))  # fmt: skip
    two = list(seams.drawn(iter(list(enumerate(one))[: first.stop]), first, StageTimer())) + later
    arms = lambda poses: np.stack([pose.body[11:17, :2] for pose in poses])  # noqa: E731
    return arms(one), arms(two), first.stop, second.start


def test_the_seam_cross_fades_from_the_one_process_avatar_without_a_jump(tmp_path):
    """Poses of a 120-frame clip cut in two as the workers cut it (worker 0 reads on past its chunk
    to finish the calibration), against one process. MediaPipe started at another frame tracks a
    few pixels apart for a long while, so the later chunk cannot equal the one-process avatar;
    what must hold: the first chunk is the one-process avatar, and at the seam the avatar moves
    from it to the later chunk's gradually, not in a jump.

    The poses are computed in a fresh process, as the workers run: on a bit-identical clip,
    MediaPipe's re-started tracker lands differently after other tests in the same process (the
    later chunk's first 10 frames 15.4 px from the one-process avatar alone, 16.1 and 18.1 at the
    end of two full-suite runs, and the seam's first frame 1.25 px off in a third)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        one, two, first_stop, second_start = pool.submit(_seam_arms, str(tmp_path)).result()
    config = AvatarConfig()
    assert len(two) == 120

    apart = np.linalg.norm(one - two, axis=2).mean(axis=1)
    fade = first_stop - config.seam_frames
    assert (apart[:fade] == 0).all()  # the first chunk is the one-process computation
    assert apart[fade] < 1.0  # the fade starts from it
    # px on 540x720: a re-started tracker, a few px apart, closer with time (see warm_up_frames);
    # the first 10 frames' mean was 12 when written, 15.4 now (frame by frame 8-25 px)
    assert apart[second_start : second_start + 10].mean() < 20.0
    assert apart[second_start + 10 :].mean() < 10.0
    window = slice(fade - 1, second_start + 10)

    def steps(arms: np.ndarray) -> np.ndarray:
        return np.linalg.norm(arms[1:] - arms[:-1], axis=2).mean(axis=1)

    # no jump: across the seam the avatar moves no faster than the one-process avatar moves there
    assert steps(two)[window].max() <= steps(one)[window].max() + 3.0


def test_only_the_calibrating_chunk_finds_the_signer_and_a_later_chunk_guards_against_it(tmp_path, monkeypatch):
    """The signer's face (dlib on frames spread over the whole clip: 8-10 s on the sample) is found
    once, by the chunk that calibrates, and published with the calibration; a later chunk guards
    its drawn faces against that one and does not look for the signer again (each did, on both
    cores at once, until session 49). The look is fixed and the per-signer probes off: the guard
    is under test."""
    from conftest import probes_off
    from signanon.avatar import chunk as chunk_module
    from signanon.avatar.chunk import Calibrated, render_chunk

    info = probe_video(looped_clip(tmp_path / "clip.mp4", 30))
    config = AvatarConfig(palette="default", face_shape="average", calibration_frames=10, **probes_off())
    searches = []
    find = chunk_module.find_signer
    monkeypatch.setattr(chunk_module, "find_signer", lambda *args, **kwargs: searches.append(1) or find(*args, **kwargs))
    published, frames = tmp_path / "calibrated.pkl", []
    first, later = Chunk(0, 0, 0, 15), Chunk(1, 5, 15, 30)
    render_chunk(info, config, first, CalibrateHere(info, config, StageTimer(), published), frames.append, StageTimer())
    assert len(searches) == 1
    calibrated = pickle.loads(published.read_bytes())
    assert isinstance(calibrated, Calibrated) and calibrated.signer is not None and calibrated.signer.found
    result = render_chunk(info, config, later, WaitForCalibration(published, StageTimer()), frames.append, StageTimer())
    assert len(searches) == 1  # not again
    assert len(frames) == 30
    guard = result.identity_guard
    assert guard["checked"] > 0 and guard["unchecked"] == 0, guard  # checked against the published signer


# -- failures ----------------------------------------------------------------------------------


def test_a_failing_worker_stops_the_run_with_its_one_line_error(tmp_path, monkeypatch):
    """Worker 1 finds its frames gone (the clip was truncated after the probe) while worker 0 has
    calibrated and drawn its chunk: the run ends with worker 1's line, nothing is written and the
    private folder is removed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clip = looped_clip(tmp_path / "clip.mp4", 40)
    info = probe_video(clip)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    config = AvatarConfig(calibration_frames=5, seam_frames=3)
    chunks = [Chunk(0, 0, 0, 10), Chunk(1, 4, 10, 40)]
    output = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="clip.mp4") as err:
        render_in_parallel(info, config, chunks, output, keep_audio=False, on_frames=lambda n: None, timer=StageTimer())
    assert "\n" not in str(err.value)
    assert not output.exists() and _no_temporaries(tmp_path) == []


def test_no_person_anywhere_is_the_one_process_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clip = tmp_path / "empty.mp4"
    with VideoWriter(clip, 64, 48, Fraction(25)) as writer:
        for i in range(12):
            writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    chunks = [Chunk(0, 0, 0, 6), Chunk(1, 2, 6, 12)]
    with pytest.raises(NoPersonError, match="no person found in .*empty.mp4"):
        render_in_parallel(probe_video(clip), AvatarConfig(seam_frames=2), chunks, tmp_path / "out.mp4",
                           keep_audio=False, on_frames=lambda n: None, timer=StageTimer())  # fmt: skip
    assert not (tmp_path / "out.mp4").exists() and _no_temporaries(tmp_path) == []


def test_worker_processes_started_before_the_probe_end_with_a_bad_input_or_a_short_clip(tmp_path, monkeypatch, capsys):
    """--workers 2 starts its processes while the clip is probed: a clip that cannot be read is
    still one line and exit 1, and a clip too short to share runs in this process; either way the
    processes end and their private folder is removed."""
    import multiprocessing

    from signanon.cli.main import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["anonymize", str(bad), "-o", str(tmp_path / "a.mp4"), "--workers", "2", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert "notes.mp4" in err and "\n" not in err
    short = looped_clip(tmp_path / "short.mp4", 40)
    summary = tmp_path / "run.json"
    assert main(["anonymize", str(short), "-o", str(tmp_path / "b.mp4"), "--workers", "2", "-q", "--summary", str(summary)]) == 0
    record = json.loads(summary.read_text())
    assert record["frames_out"] == 40 and "workers" not in record["seconds_per_stage"]  # one process
    assert multiprocessing.active_children() == []
    assert _no_temporaries(tmp_path) == []


def test_pool_workers_given_no_job_exit_at_once(tmp_path, monkeypatch):
    """A clip that needs fewer workers than were started (``--workers 4`` on a 300-frame clip):
    the ones without a job end when the jobs are sent, not when the run ends."""
    from signanon.avatar.parallel import WorkerPool

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with WorkerPool(2) as pool:
        pool.send([])
        for proc in pool.procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0  # returned on its closed pipe; terminate() would give -15
    assert _no_temporaries(tmp_path) == []


# -- the whole command -------------------------------------------------------------------------


#: the whole command's clip: two chunks of 100 frames or more (a run splits a clip only into chunks
#: of MIN_FRAMES_PER_WORKER, 150, or more: lowered to 100 here, which saves 2 x 120 frames of one of
#: the suite's slowest fixtures; the chunks still reach past the calibration and the warm-up)
FRAMES = 200


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory) -> dict:
    """A FRAMES-frame clip with a tone, anonymized with --keep-audio by one process and by two."""
    from signanon.avatar import anonymizer
    from signanon.cli.main import main

    folder = tmp_path_factory.mktemp("workers")
    clip = looped_clip(folder / "long.mp4", FRAMES, tone_hz=440)
    runs = {"clip": clip}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(anonymizer, "MIN_FRAMES_PER_WORKER", FRAMES // 2)
        for workers in (1, 2):
            out, summary = folder / f"out{workers}.mp4", folder / f"run{workers}.json"
            args = ["anonymize", str(clip), "-o", str(out), "--workers", str(workers), "--keep-audio", "--summary", str(summary), "-q"]  # fmt: skip
            assert main(args) == 0
            runs[workers] = {"out": out, "summary": json.loads(summary.read_text())}
    return runs


def test_anonymize_with_two_workers_matches_one_worker(one_and_two):
    """Same frame count and rate; the first chunk's frames the same up to the seam's fade; later
    frames the same signing from a re-started tracker; no jump at the seam (pixels of the decoded
    videos; the poses are compared in the seam test above)."""
    one, two = one_and_two[1], one_and_two[2]
    assert one["summary"]["frames_out"] == two["summary"]["frames_out"] == FRAMES
    a_info, b_info = probe_video(one["out"]), probe_video(two["out"])
    assert a_info.frame_count == b_info.frame_count == FRAMES and a_info.fps == b_info.fps == Fraction(359, 12)
    a = np.stack(list(iter_frames(a_info))).astype(np.int16)
    b = np.stack(list(iter_frames(b_info))).astype(np.int16)
    config = AvatarConfig()
    first = plan_chunks(FRAMES, 2, warm_up_frames(config, a_info.fps))[0]
    per_frame = np.abs(a - b).mean(axis=(1, 2, 3))
    assert per_frame[: first.stop - config.seam_frames - 10].mean() < 0.2  # the first chunk: same landmarks
    assert per_frame[first.stop :].mean() < 3.0  # later: same signing, a re-started tracker
    # no jump at the seam: the difference grows through the fade (single frames later on may
    # differ more: the two trackers' hands differ in a frame of fast movement)
    seam = slice(first.stop - config.seam_frames - 1, first.stop + 5)
    assert np.abs(np.diff(per_frame[seam])).max() < 4.0


def test_two_workers_keep_the_audio_and_merge_the_counts(one_and_two):
    one, two = one_and_two[1], one_and_two[2]

    def audio(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            return np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)

    sound = audio(two["out"])
    np.testing.assert_array_equal(sound, audio(one["out"]))  # the one-process run's audio, exactly
    assert sound.shape[1] / 16000 == pytest.approx(FRAMES / (359 / 12), abs=0.1)  # the clip's length
    assert two["summary"]["audio_kept"] and probe_video(two["out"]).has_audio
    assert two["summary"]["frames_without_person"] == one["summary"]["frames_without_person"] == 0
    for name in ("POSE_LANDMARKS", "FACE_LANDMARKS"):  # every frame counted once, by one worker
        assert two["summary"]["frames_with"][name] == one["summary"]["frames_with"][name] == FRAMES
    for name, count in one["summary"]["frames_with"].items():
        assert abs(two["summary"]["frames_with"][name] - count) <= 15, name  # hands: a re-started tracker
    for run in (one, two):  # the several-faces count, made on the frames the workers decode
        assert (run["summary"]["frames_checked_for_faces"], run["summary"]["frames_with_several_faces"]) == (40, 0)
    stages = two["summary"]["seconds_per_stage"]
    assert {"probe", "workers", "concat", "landmarks", "render", "encode", "count faces"} <= set(stages)
    assert {"find the signer's face", "choose look"} <= set(stages)
    # the identity guard ran in both chunks; one calibration chose one look for the whole clip
    guards = [run["summary"]["extra"]["identity_guard"] for run in (one, two)]
    assert guards[0]["look"] == guards[1]["look"]
    for guard in guards:
        assert guard["checked"] > 0 and guard["unchecked"] == 0 and guard["blanked"] == guard["blurred"] == 0
