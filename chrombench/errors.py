"""Exception types shared across chrombench. The CLI turns them into exit codes."""


class ChrombenchError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 1


class UnknownNameError(ChrombenchError, KeyError):
    """A name (task, model, dataset) that is not registered. Exit code 2, like a usage error."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataFormatError(ChrombenchError, ValueError):
    """Input that violates the archive format. The message names the file and line."""

    exit_code = 2


class ChecksumError(ChrombenchError):
    """A download or file whose digest does not match the expected one."""


class ModelFormatError(ChrombenchError, ValueError):
    """A saved model or weights file that chrombench cannot load safely."""

    exit_code = 2


class ProtocolViolation(ChrombenchError):
    """Code on the tuning path reached for test data (the engine seals the test split while tuning)."""


class PredictionsError(ChrombenchError, ValueError):
    """Predictions that break the evaluator's input contract or do not fit the task's split. The message
    names the problem (and the file and line, for a predictions file)."""

    exit_code = 2


class ModelDeclarationError(ChrombenchError, TypeError):
    """A model class declares something the protocol does not allow (``models.contract.check_declarations``)."""

    exit_code = 2
