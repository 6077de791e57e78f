"""Model backends (transformers, OpenAI-compatible HTTP, replay) behind one batched protocol."""

from deltaprompts.models.base import AnswerScore, Backend, Completion, Message, Request, Sampling, Scorer

__all__ = ["AnswerScore", "Backend", "Completion", "Message", "Request", "Sampling", "Scorer"]
