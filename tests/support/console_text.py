"""What a test compares a command's output with."""


def flat(text: str) -> str:
    """Output without Rich's box drawing and line wrapping, for matching sentences."""
    return " ".join(text.replace("│", " ").split())
