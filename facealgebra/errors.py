"""The one exception type that means "the user gave bad input": the CLI prints it as `error: ...` and exits 2."""


class FaceAlgebraError(Exception):
    """Bad usage or bad input. The message names the culprit and says what to do."""


class TrainingError(Exception):
    """A failure while training (exit 1), such as a non-finite loss."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training (exit 130); the message says what was saved. A KeyboardInterrupt, so that
    no `except Exception` swallows it; a subclass, because Python 3.11 ends with SIGINT (exit -2, not our 130)
    after a plain KeyboardInterrupt raised in code that exec() runs, even one caught (dataclasses run such code
    while torch loads)."""
