"""What a finished run tells its user, in lines: the command line prints them and the web page
shows them under the result, so both say the same.

Beyond counts, the lines say what the run gave up to keep the signer unrecognisable: faces the
avatar's identity guard drew calmer or blank (weaker or lost facial grammar), people the avatar
did not draw, and whether anybody checked the output at all.
"""

from __future__ import annotations

from .summary import RunSummary
from .video.people import several_faces_note


def guard_line(record: dict | None) -> str:
    """What the avatar's identity guard did (signanon.avatar.identity_guard), in one line.

    record: the run summary's ``extra["identity_guard"]`` (None or empty: the guard was off)."""
    if not record:
        return "identity guard off (--no-identity-guard): nobody checked that the drawn face is not the signer's"
    look = record.get("look", {})
    scores = look.get("scores") or {}
    chosen = (
        f"look {look['chosen']} (palette/face shape; its nearest probe face {scores[look['chosen']][1]:.2f} from the signer's by dlib; "
        f"looks tried: {len(scores)}); " if look.get("chosen") in scores else ""
    )
    closest = "" if record["min_distance"] is None else f", closest distance {record['min_distance']:.3f}"
    others = record.get("other_people", 0)
    against = f"the signer and {others} other {'person' if others == 1 else 'people'} the input shows" if others else "the signer"
    text = f"identity guard: {chosen}{record['checked']} drawn faces checked against {against}{closest}"
    if record["calmed"]:
        text += f"; {record['calmed']} recognised as the signer and drawn with a calmer expression (weaker facial grammar)"
    if record["blanked"] or record["blurred"]:
        text += f"; {record['blanked']} drawn with a blank face and {record['blurred']} blurred (their facial grammar is lost)"
    if record["unchecked"]:
        text += f"; dlib found no face of the signer's in the input, so {record['unchecked']} drawn faces were not checked"
    turns = record.get("signers_in_turn", 1)
    if turns > 1 and (record["calmed"] or record["blanked"] or record["blurred"]):
        text += (
            f"; the largest face belongs to {turns} people in turn (a cut between signers?), so faces are kept from the "
            "mean of them, which lies near any face: anonymize each shot on its own to keep their expressions"
        )
    return text


def privacy_check_line(summary: RunSummary) -> str | None:
    """The output privacy check's line (signanon.evaluation.verify); None where it was skipped
    and the method keeps its own guard (the avatar's)."""
    v = summary.verification
    if v is None or v["skipped"]:
        if summary.method == "diffusion":
            return "privacy check skipped (--no-verify): nobody checked that the signer is unrecognisable"
        return None
    closest = "no face found" if v["min_distance"] is None else f"closest distance {v['min_distance']:.3f}"
    return (
        f"privacy check passed: signer recognised in 0 of {v['checked_frames']} frames ({closest}, "
        f"refused at <= {v['threshold']:.2f}); frames where the output shows no face but the original "
        f"does: {v['frames_without_face']}"
    )


def outcome_lines(summary: RunSummary) -> list[str]:
    """What the run did to keep the signer unrecognisable and what that cost, a line each, in the
    order the command line prints them: the identity guard (avatar), other people in the input, the
    output privacy check. No paths: the web page shows these as they are."""
    lines = [guard_line(summary.extra.get("identity_guard"))] if summary.method != "diffusion" else []
    lines.append(several_faces_note(summary.frames_checked_for_faces, summary.frames_with_several_faces, summary.method))
    lines.append(privacy_check_line(summary))
    return [line for line in lines if line]


def describe(summary: RunSummary) -> str:
    """The run's closing text on the command line: what was written, then :func:`outcome_lines`."""
    text = (
        f"wrote {summary.output}: {summary.frames_out} frames at {summary.fps_out:.3f} fps "
        f"in {summary.seconds_total:.1f} s"
    )
    if summary.method == "diffusion":
        text += (
            f"; {summary.key_frames} frames diffused ({summary.key_frames_resumed} resumed), "
            f"{summary.unet_evaluations} UNet evaluations"
        )
    else:
        text += f"; frames without a person: {summary.frames_without_person}"
    return "\n".join([text, *outcome_lines(summary)])
