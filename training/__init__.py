"""Offline fine-tuning from the conversation log."""

__all__: list[str] = []
