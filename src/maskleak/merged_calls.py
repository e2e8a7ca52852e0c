"""Run many pipeline calls at once and evaluate their UNet together.

One diffusers pipeline call has one strength, because the strength sets where in the
timestep schedule the call starts. The study's strength sweep has one inpainting per
strength and image, so called one by one its GPU runs at batch 1, several times below its
throughput at batch 8-16. But every call with the same number of steps walks the same
schedule and only starts at a different point, so from its start on it is at the same
timestep as the calls that started earlier.

:class:`UNetMerger` runs each call in a thread of its own, with the pipeline's own
``__call__`` (its own scheduler copy, latents, blending, VAE and post-processing, so each
call computes exactly what it computes alone), and replaces the UNet it sees with a proxy.
When every running call waits for the UNet, the caller's thread evaluates the UNet once
for all waiting calls at the latest timestep, up to ``max_batch`` images, and hands each
call its slice. Which calls go together, and when a call starts, is decided in a fixed
order (the order of the calls given), never by thread timing, so results are
reproducible. The calls' VAE work runs one call at a time (:meth:`UNetMerger.serialized`),
and at most ``max_live_images`` images' calls run at once, so the device holds one UNet
batch's and one VAE call's activations, beside the running calls' inputs. Prompt encoding
must run one call at a time too (:meth:`UNetMerger.locked`): a fast tokenizer sets its
padding before each call and is not thread-safe; run concurrently, a call can get its
prompt unpadded (2 tokens instead of 77). The UNet sees the same inputs, timestep and text
embeddings it would see per call; only the batch it is part of differs, as with any batch
size (see README "Performance" for what that changes on CUDA).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Merged calls running at once, in batches' worth of images: each holds its image, mask
#: and latents on the device (~8 MB per 640x416 image), and a running wave of calls
#: merges with the calls that join it until the batches are full.
LIVE_BATCHES = 8

#: UNet keyword arguments a merged evaluation passes through unchanged; any other value
#: of them would need per-call handling, so such a request is evaluated on its own.
_MERGEABLE_KWARGS = {
    "timestep_cond": None,
    "cross_attention_kwargs": None,
    "added_cond_kwargs": None,
    "return_dict": False,
}


def schedule(scheduler: Any, steps: int, strength: float) -> list[float]:
    """Timesteps one pipeline call evaluates the UNet at, in order, computed on a copy of
    ``scheduler`` exactly as the img2img/inpaint pipelines slice them (``get_timesteps``),
    so that no GPU value has to be read back to know where a call is."""
    from maskleak.pipeline_choice import steps_run

    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(steps)
    t_start = steps - steps_run(steps, strength)
    return [float(t) for t in probe.timesteps[t_start * probe.order :]]


def should_merge(max_batch: int, n_calls: int) -> bool:
    """Whether run_job merges its calls: only batches of several images can be shared,
    and only by several calls."""
    return max_batch > 1 and n_calls > 1


@dataclass
class _Request:
    order: int
    timestep_value: float
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    @property
    def size(self) -> int:
        return int(self.args[0].shape[0])

    @property
    def mergeable(self) -> bool:
        extra = {k: v for k, v in self.kwargs.items() if k != "encoder_hidden_states"}
        known = all(k in _MERGEABLE_KWARGS and _MERGEABLE_KWARGS[k] is v for k, v in extra.items())
        # return_dict must be False: the merged result is handed back as a tuple.
        return len(self.args) <= 3 and known and extra.get("return_dict") is False


class _UNetProxy:
    """What one call's pipeline sees as its UNet: attributes (config, dtype, device) are
    the real UNet's; calling it queues the inputs and waits for the merged result."""

    def __init__(self, merger: UNetMerger, order: int, timesteps: Sequence[float]) -> None:
        self._merger = merger
        self._order = order
        self._timesteps = list(timesteps)
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._merger.unet, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.calls >= len(self._timesteps):
            raise RuntimeError(
                f"merged call {self._order}: more UNet evaluations than its schedule "
                f"({len(self._timesteps)})"
            )
        value = self._timesteps[self.calls]
        self.calls += 1
        return self._merger.submit(_Request(self._order, value, args, kwargs))


@dataclass(frozen=True)
class Call:
    """One pipeline call to run merged: the timesteps it evaluates the UNet at
    (:func:`schedule`), its number of images, and ``run(unet)``, which makes the call
    with ``unet`` as the pipeline's UNet."""

    timesteps: Sequence[float]
    images: int
    run: Callable[[Any], Any]


class _Serialized:
    """A model shared by the calls whose ``methods`` run one call at a time. The VAE's
    encode and decode hold a whole image batch's activations: run from many threads at
    once, their memory would add up."""

    def __init__(self, model: Any, lock: threading.Lock, methods: tuple[str, ...]) -> None:
        self._model, self._lock, self._methods = model, lock, methods

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        if name not in self._methods:
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return locked


class UNetMerger:
    """Evaluate the UNet of concurrently running pipeline calls together.

    Args:
        unet: the pipeline's UNet (shared by every call).
        max_batch: most images in one UNet evaluation (the job's batch size).
        max_live_images: most images of calls running at once (at least one call runs):
            each running call holds its image, mask and latents on the device. Calls
            start in the order given, as earlier ones finish.
        on_evaluation: called in the caller's thread after each UNet evaluation, with
            the evaluations made so far (a job's progress log).
    """

    def __init__(
        self,
        unet: Any,
        max_batch: int,
        max_live_images: int | None = None,
        on_evaluation: Callable[[int], object] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.unet = unet
        self.max_batch = max_batch
        self.max_live_images = max_live_images
        self.on_evaluation = on_evaluation
        self._cond = threading.Condition()
        self._serial_lock = threading.Lock()
        self._pending: list[_Request] = []
        self._live = 0
        self._live_images = 0
        self._aborted = False
        #: UNet evaluations made, and images evaluated, over all runs.
        self.evaluations = 0
        self.images = 0

    def serialized(self, model: Any, methods: tuple[str, ...]) -> Any:
        """``model`` for one call's pipeline, its ``methods`` run one call at a time."""
        return _Serialized(model, self._serial_lock, methods)

    def locked(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, run one call at a time (with the serialized models' methods)."""

        def run(*args: Any, **kwargs: Any) -> Any:
            with self._serial_lock:
                return function(*args, **kwargs)

        return run

    def submit(self, request: _Request) -> Any:
        with self._cond:
            if self._aborted:
                raise RuntimeError("merged calls stopped: the coordinating thread failed")
            self._pending.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """Run the calls, each in a thread of its own, and evaluate their UNet here.
        Returns the calls' results in order; if any call fails, the others still finish
        and the first failure (in call order) is raised."""
        results: list[Any] = [None] * len(calls)
        errors: dict[int, BaseException] = {}
        threads: list[threading.Thread] = []

        def work(i: int, proxy: _UNetProxy) -> None:
            try:
                results[i] = calls[i].run(proxy)
                if proxy.calls != len(proxy._timesteps):
                    raise RuntimeError(
                        f"merged call {i}: {proxy.calls} UNet evaluations, schedule "
                        f"said {len(proxy._timesteps)}"
                    )
            except BaseException as err:  # re-raised in the caller's thread
                errors[i] = err
            finally:
                with self._cond:
                    self._live -= 1
                    self._live_images -= calls[i].images
                    self._cond.notify_all()

        def start_more() -> None:
            # Called with the lock held, only when every running call waits or is done,
            # so which calls start when does not depend on the threads' timing.
            while len(threads) < len(calls):
                call = calls[len(threads)]
                cap = self.max_live_images
                if self._live and cap is not None and self._live_images + call.images > cap:
                    return
                proxy = _UNetProxy(self, len(threads), call.timesteps)
                thread = threading.Thread(
                    target=work, args=(len(threads), proxy), name=f"maskleak-call-{len(threads)}"
                )
                self._live += 1
                self._live_images += call.images
                threads.append(thread)
                thread.start()

        self._aborted = False
        try:
            self._serve(start_more)
        except BaseException:
            # Interrupted (Ctrl-C) or failed here: release every waiting call, or the
            # joins below would wait for UNet results that never come.
            self._abort()
            raise
        finally:
            for thread in threads:
                thread.join()
        if errors:
            raise errors[min(errors)]
        return results

    def _abort(self) -> None:
        with self._cond:
            self._aborted = True
            for request in self._pending:
                request.error = RuntimeError("merged calls stopped: the coordinating thread failed")
                request.done.set()
            self._pending.clear()

    def _serve(self, start_more: Callable[[], None]) -> None:
        while True:
            with self._cond:
                # Every running call waits for the UNet (or none is left): the set of
                # waiting requests is then the same whatever the threads' timing.
                self._cond.wait_for(lambda: len(self._pending) >= self._live)
                start_more()
                self._cond.wait_for(lambda: len(self._pending) >= self._live)
                if not self._pending:
                    return
                taken = self._next_batch()
                for request in taken:
                    self._pending.remove(request)
            self._evaluate(taken)
            if self.on_evaluation is not None:
                self.on_evaluation(self.evaluations)

    def _next_batch(self) -> list[_Request]:
        """The waiting requests at the latest timestep (schedules run downwards), in job
        order, as many as fit in ``max_batch`` images (at least one)."""
        latest = max(r.timestep_value for r in self._pending)
        ready = sorted(
            (r for r in self._pending if r.timestep_value == latest), key=lambda r: r.order
        )
        if not ready[0].mergeable:
            return ready[:1]
        taken: list[_Request] = []
        images = 0
        for request in ready:
            if not request.mergeable:
                continue
            if taken and images + request.size > self.max_batch:
                break
            taken.append(request)
            images += request.size
        return taken

    def _evaluate(self, taken: list[_Request]) -> None:
        import torch

        try:
            with torch.no_grad():
                if len(taken) == 1:
                    only = taken[0]
                    outputs = [self.unet(*only.args, **only.kwargs)]
                else:
                    outputs = self._merged(taken)
            for request, output in zip(taken, outputs, strict=True):
                request.result = output
        except BaseException as err:
            for request in taken:
                request.error = err
        finally:
            self.evaluations += 1
            self.images += sum(r.size for r in taken)
            for request in taken:
                request.done.set()

    def _merged(self, taken: list[_Request]) -> list[tuple[Any]]:
        import torch

        first = taken[0]
        sample = torch.cat([r.args[0] for r in taken])
        hidden = torch.cat([_hidden_states(r) for r in taken])
        # Every request is at the same timestep value; pass the first's tensor as is.
        rest = {k: v for k, v in first.kwargs.items() if k != "encoder_hidden_states"}
        noise_pred = self.unet(sample, first.args[1], encoder_hidden_states=hidden, **rest)[0]
        return [(part,) for part in noise_pred.split([r.size for r in taken])]


def _hidden_states(request: _Request) -> Any:
    if "encoder_hidden_states" in request.kwargs:
        return request.kwargs["encoder_hidden_states"]
    return request.args[2]


def run_merged(
    pipe: Any,
    calls: Sequence[tuple[float, Sequence[Any]]],
    max_batch: int,
    steps: int,
    call: Callable[[float, Sequence[Any], Any], None],
    on_evaluation: Callable[[int], object] | None = None,
    schedule_of: Callable[[Any, int, float], list[float]] | None = None,
) -> dict[str, int]:
    """Make pipeline calls of ``pipe`` merged, at most ``LIVE_BATCHES`` batches' worth of
    images at once: ``calls`` are (strength, items), started in that order;
    ``call(strength, items, pipeline)`` makes one with the pipeline it is given, a copy of
    ``pipe`` with its own scheduler whose UNet is this run's proxy, whose VAE work and
    prompt encoding run one call at a time. ``on_evaluation`` as for :class:`UNetMerger`.
    ``schedule_of(scheduler, steps, strength)``: a call's timesteps, when its pipeline
    slices them otherwise than diffusers' (:func:`schedule`). Returns the UNet evaluations
    and the images they held."""
    from diffusers import AsymmetricAutoencoderKL

    from maskleak.models import call_copy

    merger = UNetMerger(pipe.unet, max_batch, LIVE_BATCHES * max_batch, on_evaluation)
    jobs = []
    for strength, items in calls:
        worker = call_copy(pipe)
        # Not through the pipeline's __setattr__, which would record these stand-ins in
        # its config as if they were models.
        if not isinstance(pipe.vae, AsymmetricAutoencoderKL):  # the pipeline asks its type
            object.__setattr__(worker, "vae", merger.serialized(pipe.vae, ("encode", "decode")))
        object.__setattr__(worker, "encode_prompt", merger.locked(worker.encode_prompt))

        def job(proxy: Any, w: Any = worker, s: float = strength, c: Any = items) -> None:
            object.__setattr__(w, "unet", proxy)
            call(s, c, w)

        timesteps = (schedule_of or schedule)(pipe.scheduler, steps, strength)
        jobs.append(Call(timesteps, len(items), job))
    merger.run(jobs)
    return {"unet_evaluations": merger.evaluations, "unet_images": merger.images}


def planned_evaluations(
    calls: Sequence[tuple[Sequence[float], int]], max_batch: int, rows_per_image: int = 1
) -> int:
    """The UNet evaluations :func:`run_merged` makes for calls given as (timesteps,
    images), counted exactly by the real merger on a stand-in UNet. ``rows_per_image``: 2
    with classifier-free guidance, which evaluates each image twice in one batch."""
    import torch

    def walk(timesteps: Sequence[float], images: int) -> Callable[[Any], None]:
        def run(unet: Any) -> None:
            rows = torch.zeros((images * rows_per_image, 1))
            for t in timesteps:
                unet(rows, torch.tensor(t), encoder_hidden_states=rows, return_dict=False)

        return run

    merger = UNetMerger(lambda rows, *_, **__: (rows,), max_batch, LIVE_BATCHES * max_batch)
    merger.run([Call(t, n, walk(t, n)) for t, n in calls])
    return merger.evaluations
