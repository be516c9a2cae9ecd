"""One worker thread owns the model: it batches requests that arrive together and runs streams one at a time.

The model is loaded once and never touched by two threads at once. Non-streaming requests wait in a queue;
the worker takes the first one, collects more for up to ``batch_wait_ms`` (at most ``max_batch_size``),
groups them by generation settings and answers each group with one left-padded ``generate`` call plus one
likelihood-scoring pass for closed-set options (DESIGN 2.7). A streaming request is run alone, between
batches, pushing text pieces to its :class:`TokenStream` as they are decoded.

Cancellation: setting a job's ``cancelled`` event (the app does on timeout or a closed connection) drops it
if it has not started, stops its generation row at the next token, and stops option scoring at the next
forward once every closed-set job of the group is cancelled. A cancelled job's future ends with
:class:`sepit.errors.Cancelled`; ``Engine.cancelled_jobs`` counts them. Option scoring runs at most
``max_scoring_tokens`` (rows x prompt tokens) per forward, which bounds its logits' memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

from sepit.errors import Cancelled, SepitError
from sepit.eval.generate import GenerationSettings, generate_continuations, score_options
from sepit.serve.conversation import chat_messages


class QueueFullError(SepitError):
    """Too many requests are waiting (HTTP 503)."""


@dataclass
class Result:
    text: str
    finish_reason: str  # "stop" (end of turn) | "length" (max_new_tokens reached)
    prompt_tokens: int
    completion_tokens: int
    probabilities: dict[str, float] | None = None
    choice: str | None = None


class TokenStream(TextStreamer):
    """Decoded text pieces handed from the worker thread to an asyncio queue; ``None`` ends the stream."""

    def __init__(self, tokenizer, loop: asyncio.AbstractEventLoop):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.loop, self.pieces = loop, asyncio.Queue()

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.loop.call_soon_threadsafe(self.pieces.put_nowait, text)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.pieces.put_nowait, None)


class _Cancelled(StoppingCriteria):
    """Stops each row whose request was given up (timeout, closed connection) at its next token."""

    def __init__(self, events: list[threading.Event]):
        self.events = events

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        return torch.tensor([e.is_set() for e in self.events], dtype=torch.bool, device=input_ids.device)


@dataclass(eq=False)
class Job:
    item: dict
    settings: GenerationSettings
    future: Future = field(default_factory=Future)
    stream: TokenStream | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class Engine:
    """``submit`` a model item; the returned job's ``future`` resolves to a :class:`Result`."""

    def __init__(self, sepit, max_batch_size: int = 8, batch_wait_ms: float = 5.0, max_queue: int = 256,
                 max_scoring_tokens: int = 2048):
        self.model, self.processor, self.device = sepit.model, sepit.processor, sepit.device
        self.max_batch_size, self.batch_wait_s, self.max_queue = max_batch_size, batch_wait_ms / 1000, max_queue
        self.max_scoring_tokens = max_scoring_tokens
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.batches_run = self.cancelled_jobs = 0
        self._held: Job | None = None
        self._worker = threading.Thread(target=self._loop, name="sepit-serve-worker", daemon=True)
        self._worker.start()

    # --- client side ---
    def submit(self, item: dict, settings: GenerationSettings, stream: TokenStream | None = None) -> Job:
        if self.jobs.qsize() >= self.max_queue:
            raise QueueFullError(f"server busy: {self.max_queue} requests already waiting; retry later")
        job = Job(item, settings, stream=stream)
        self.jobs.put(job)
        return job

    def close(self) -> None:
        self.jobs.put(None)
        self._worker.join(timeout=30)

    @property
    def pending(self) -> int:
        return self.jobs.qsize()

    # --- worker side ---
    def _next(self, timeout: float | None) -> Job | None:
        if self._held is not None:
            job, self._held = self._held, None
            return job
        return self.jobs.get(timeout=timeout) if timeout is None or timeout > 0 else self.jobs.get_nowait()

    def _loop(self) -> None:
        stopping = False
        while not stopping and (job := self._next(None)) is not None:
            batch, deadline = [job], time.monotonic() + self.batch_wait_s
            while job.stream is None and len(batch) < self.max_batch_size:
                try:
                    nxt = self._next(deadline - time.monotonic())
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if nxt.stream is not None:  # a stream runs alone, right after this batch
                    self._held = nxt
                    break
                batch.append(nxt)
            self._run(batch)

    def _run(self, jobs: list[Job]) -> None:
        live = []
        for job in jobs:
            if job.cancelled.is_set():
                self._cancel(job)
            elif job.future.set_running_or_notify_cancel():
                live.append(job)
        groups: dict[tuple, list[Job]] = {}
        for job in live:
            groups.setdefault(dataclasses.astuple(job.settings), []).append(job)
        for group in groups.values():
            try:
                results = self._answer(group)
            except Cancelled:
                results = [None] * len(group)
            except Exception as err:  # one bad request must not fail the others: retry them one by one
                if len(group) == 1:
                    group[0].future.set_exception(err)
                    self._close(group)
                    continue
                results = [self._answer_one(job) for job in group]
            for job, result in zip(group, results, strict=True):
                if job.future.done():
                    continue
                if result is None or job.cancelled.is_set():
                    self._cancel(job)
                else:
                    job.future.set_result(result)
            self._close(group)

    def _answer_one(self, job: Job) -> Result | None:
        if job.cancelled.is_set():
            return None
        try:
            return self._answer([job])[0]
        except Cancelled:
            return None
        except Exception as err:
            job.future.set_exception(err)
            return None

    def _cancel(self, job: Job) -> None:
        """End a given-up job: its future raises :class:`Cancelled` (nobody waits for it any more)."""
        self.cancelled_jobs += 1
        if not job.future.done():
            job.future.set_exception(Cancelled("request given up (timeout or closed connection); work stopped"))
        self._close([job])

    @staticmethod
    def _close(jobs: list[Job]) -> None:
        for job in jobs:
            if job.stream is not None:
                job.stream.close()

    @torch.inference_mode()
    def _answer(self, jobs: list[Job]) -> list[Result | None]:
        """One ``generate`` call for all ``jobs`` (same settings), then option scoring for closed-set ones;
        ``None`` for a job cancelled meanwhile."""
        self.batches_run += 1
        items = [j.item for j in jobs]
        batch = self.processor([it["sequence"] for it in items], messages=[chat_messages(it) for it in items],
                               coords=[it.get("coords") for it in items], plddt=[it.get("plddt") for it in items],
                               padding_side="left")
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        extra = {"stopping_criteria": StoppingCriteriaList([_Cancelled([j.cancelled for j in jobs])]),
                 "citable": [it.get("citable") for it in items]}
        if len(jobs) == 1 and jobs[0].stream is not None:
            extra["streamer"] = jobs[0].stream
        texts, new_BN = generate_continuations(self.model, self.processor.tokenizer, inputs, jobs[0].settings,
                                               **extra)
        results = [self._result(text, row, mask, jobs[0].settings.max_new_tokens)
                   for text, row, mask in zip(texts, new_BN, inputs["attention_mask"], strict=True)]
        closed = [i for i, it in enumerate(items) if it["choices"] and not jobs[i].cancelled.is_set()]
        if closed:
            probs = score_options(self.model, self.processor, [items[i] for i in closed], self._scoring_rows(items),
                                  stop=lambda: all(jobs[i].cancelled.is_set() for i in closed))
            for i, p in zip(closed, probs, strict=True):
                results[i].probabilities, results[i].choice = p, max(p, key=p.get)
        return [None if j.cancelled.is_set() else r for j, r in zip(jobs, results, strict=True)]

    def _scoring_rows(self, items: list[dict]) -> int:
        """Items per option-scoring batch, so that one forward holds at most ``max_scoring_tokens`` positions
        with logits: the prompt pass keeps one logit per item, the option pass one per option token, so the
        bound is items x max(prompt tokens, options x option tokens) (:func:`sepit.serve.protein.check_prompt`)."""
        largest = max((it.get("scoring_tokens") or it.get("prompt_tokens") or 0 for it in items), default=0)
        return max(1, min(self.max_batch_size, self.max_scoring_tokens // max(largest, 1)))

    def _result(self, text: str, new_N: torch.Tensor, prompt_mask: torch.Tensor, limit: int) -> Result:
        config = self.model.generation_config
        eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
        ended = [i for i, t in enumerate(new_N.tolist()) if t in eos]
        n_new = ended[0] + 1 if ended else len(new_N)
        reason = "stop" if ended or n_new < limit else "length"
        return Result(text, reason, int(prompt_mask.sum()), n_new)
