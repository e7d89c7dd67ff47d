"""The one training loop every neural model in the zoo uses, and the ChromModel plumbing around it.

``TorchChromModel`` implements the contract (fit / predict_proba / save / load) for any
``nn.Module`` that maps a batch of transformed inputs ``[n, 100 bins, 5 marks]`` to logits ``[n]``;
subclasses only say how to build that module (``_build_module``). Training is the same for all:

- Adam with gradient-norm clipping (``ClippedAdam``), binary cross-entropy on the logit;
- early stopping on validation AUROC with ``patience`` epochs, keeping the best epoch's weights
  (validation loss decides instead when the validation split holds a single class), under an
  epoch cap that a converging fit does not reach; a plateau first cuts the learning rate x0.2 when
  the model asks for it (``lr_drops``) or when the fit has not learned yet (best epoch before
  ``results.STALL_EPOCHS``, at most ``STALL_RESCUES`` times); ``training_report()`` says how the fit
  ended (``patience``: converged; ``stalled``: stopped before it learned; ``cap``/``time``: still
  improving, unconverged; ``diverged``) and at which epochs the learning rate was cut;
- ``on_epoch(epoch, {"valid_auroc", "valid_loss", "train_loss", "epoch_time"})`` after every epoch;
  ``StopTraining(reason)`` ends training with the best epoch kept; anything else it raises (e.g.
  ``optuna.TrialPruned``) propagates;
- ``seed`` fixes initialisation, shuffling and dropout: same seed -> identical predictions on CPU;
- ``device="auto"`` uses CUDA when ``torch.cuda.is_available()``.

Inputs are raw counts; ``input_transform`` ("log1p" by default, "raw" for reference weights that
were trained on raw counts) is applied before the module, so gradient-based interpretation
(``prepare_inputs`` / ``logits_from_inputs``) sees the module's own input scale.
"""

from __future__ import annotations

import copy
import math
import pickle
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from chrombench.errors import ChrombenchError, ModelFormatError
from chrombench.evaluate import auroc
from chrombench.results import STALL_EPOCHS, is_stalled_fit
from chrombench.parallel import intra_op_threads, map_chunks  # noqa: F401 (re-exported)
from chrombench.models.compute import compute_report, unreported
from chrombench.models.contract import (MODEL_FORMAT, STOP_REASONS, ChromModel, EpochCallback, StopTraining,
                                        check_counts, fit_report)

from . import batched_lstm, native_library, native_lstm

INPUT_TRANSFORMS = ("log1p", "raw")
DEVICES = ("auto", "cpu", "cuda")
WEIGHTS_FILE = "weights.pt"
PREDICT_BATCH = 256  # genes per forward pass at prediction time: large, yet cache-sized on a CPU
LR_DROP_FACTOR = 0.2  # each plateau's learning-rate cut (``lr_drops``): one order of magnitude in two
# Each cut also goes back to the best epoch's weights: after a plateau the current ones are worse.
# Cuts a fit may take when patience runs out before it learned (results.is_stalled_fit: an early best
# epoch below a linear model's AUROC). A fit that learned never takes one, so converged fits are exactly
# what they were without this rule.
STALL_RESCUES = 2


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ChrombenchError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ChrombenchError(f"device {device!r} asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(device)


def transform_counts(X, transform: str, device: torch.device) -> torch.Tensor:
    """Raw counts ``[n, 100, 5]`` -> float32 tensor on ``device`` in the module's input scale."""
    t = torch.as_tensor(np.asarray(X, dtype=np.float32)).to(device)
    if transform == "log1p":
        t = torch.log1p(t)
    elif transform != "raw":
        raise ChrombenchError(f"unknown input_transform {transform!r}; use one of {', '.join(INPUT_TRANSFORMS)}")
    return t


def shared_attention(per_bin: np.ndarray, n_marks: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha [n, marks, bins], beta [n, marks])`` for attention that cannot tell marks apart (the
    layer before it mixes them: a convolution over all marks, a token holding them all): every mark
    gets the same per-bin weights, and beta is uniform."""
    alpha = np.repeat(np.asarray(per_bin, np.float32)[:, None, :], n_marks, axis=1)
    return alpha, np.full((len(alpha), n_marks), 1.0 / n_marks, np.float32)


class TorchChromModel(ChromModel):
    """Base class: subclasses define ``__init__`` (hyperparameters) and ``_build_module()``.

    Expected hyperparameters: ``lr, batch_size, epochs, patience, clip_norm, weight_decay,
    input_transform, seed, device``. Fitted state: ``module_`` and ``history_``.
    """

    param_ranges = {"lr": "(0, inf)", "batch_size": "[1, inf)", "epochs": "[1, inf)", "patience": "[1, inf)",
                    "clip_norm": "[0, inf)", "weight_decay": "[0, inf)", "dropout": "[0, 1)", "lr_drops": "[0, inf)"}
    seed_param, device_param, iterative, fine_tunes = "seed", "device", True, True
    explains = ("gradients",)

    # -- to implement ---------------------------------------------------------------------------
    def _build_module(self) -> nn.Module:
        raise NotImplementedError  # pragma: no cover - abstract

    def _logits(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[n]`` for a transformed batch; override when the module returns more than that."""
        return module(x)

    def _loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The training loss of (logits, 0/1 targets); binary cross-entropy unless a model says otherwise."""
        return nn.BCEWithLogitsLoss()

    def _optimizer(self, module: nn.Module):
        """``zero_grad()`` / ``step()``: Adam with L2 weight decay and gradient clipping unless a model
        says otherwise (Chromoformer: AdamW)."""
        return ClippedAdam(module, float(self.lr), float(self.weight_decay), float(self.clip_norm or 0.0))

    # -- the contract -----------------------------------------------------------------------------
    def fit(self, train, valid=None, on_epoch: EpochCallback | None = None) -> "TorchChromModel":
        self._check_params()
        self._record_input(train)  # the module is built for this task's (bins, marks)
        return self._fit_module(None, train, valid, on_epoch)

    def fine_tune(self, train, valid=None, on_epoch: EpochCallback | None = None) -> "TorchChromModel":
        """Go on training the fitted weights on ``train`` (early stopping on ``valid``), as transfer
        learning does: pretrained on other cell types, then fitted to this one. A fresh optimizer;
        the input shape must be the one the weights were fitted on."""
        self._check_params()
        module = self._fitted_module()
        check_counts(train.X, "train.X", self.input_shape())
        return self._fit_module(module, train, valid, on_epoch)

    def _fit_module(self, module: nn.Module | None, train, valid, on_epoch) -> "TorchChromModel":
        device = resolve_device(self.device)
        # the seed drives initialisation and dropout; the caller's random state is restored afterwards
        gpus = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):
            torch.manual_seed(int(self.seed))
            module = (module if module is not None else self._build_module()).to(device)
            self.module_ = module
            # one intra-op thread on a CPU (see map_chunks for why); the fused LSTM kernels get the cores
            kernel_threads = native_lstm.default_threads()
            with native_lstm.threads(kernel_threads), intra_op_threads(1 if device.type == "cpu" else None), \
                    batched_lstm.recording_paths() as paths:
                self.history_ = _train(self, module, train, valid, device, on_epoch)
                torch_threads = torch.get_num_threads()
        self.compute_ = _compute_of(paths, kernel_threads, torch_threads, self.history_.get("optimizer"), device)
        module.eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        p_on = torch.sigmoid(self.predict_logits(X).double()).numpy()
        return np.column_stack([1.0 - p_on, p_on])

    def predict_logits(self, X) -> torch.Tensor:
        """Logits ``[n]`` (CPU tensor) for raw counts ``X [n, bins, marks]``."""
        X = check_counts(X, shape=self.input_shape())
        out = self.map_batches(X, lambda module, x: self._logits(module, x).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def map_batches(self, X, fn: Callable) -> list:
        """``fn(module, x)`` in inference mode for batches ``x`` (transformed) of raw counts ``X``, in order."""
        module = self._fitted_module().eval()
        device = next(module.parameters()).device

        def batch(start: int, stop: int):
            with torch.inference_mode():
                return fn(module, transform_counts(X[start:stop], self.input_transform, device))

        return map_chunks(batch, len(X), PREDICT_BATCH, device)

    def n_parameters(self) -> int:
        module = getattr(self, "module_", None) or self._build_module()
        return sum(p.numel() for p in module.parameters())

    def compute_report(self) -> dict:
        """What the last fit computed on (``chrombench.models.compute``): the record's ``compute`` block."""
        return getattr(self, "compute_", None) or unreported()  # loaded weights: computed elsewhere

    def training_report(self) -> dict:
        history = getattr(self, "history_", None)
        if not history:  # loaded reference weights: trained elsewhere, nothing known of how
            return fit_report("unknown", iterative=True)
        stopped = history.get("stopped", "unknown")
        cuts = {"lr_cuts": history["lr_cuts"]} if history.get("lr_cuts") else {}
        for key in ("valid_floor", "best_valid_auroc"):  # what the stall rule saw, where it looked
            if history.get(key) is not None:
                cuts[key] = float(history[key])
        return fit_report(stopped, iterative=True, epochs_run=len(history.get("epochs", [])),
                          best_epoch=history.get("best_epoch"), cap=int(self.epochs), patience=int(self.patience), **cuts)

    # -- interpretation hooks (chrombench.explain) ---------------------------------------------------
    def prepare_inputs(self, X) -> torch.Tensor:
        module = self._fitted_module()
        return transform_counts(check_counts(X, shape=self.input_shape()), self.input_transform,
                                next(module.parameters()).device)

    def logits_from_inputs(self, x: torch.Tensor) -> torch.Tensor:
        module = self._fitted_module()
        module.eval()
        return self._logits(module, x)

    # -- persistence -------------------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict:
        state = {k: v.detach().cpu().contiguous() for k, v in self._fitted_module().state_dict().items()}
        torch.save(state, directory / WEIGHTS_FILE)
        return {"weights": WEIGHTS_FILE, "training": getattr(self, "history_", None)}

    def _load_state(self, directory: Path, config: dict) -> None:
        from chrombench.models.io import state_file

        path = state_file(directory, config, "weights", WEIGHTS_FILE)
        if not path.is_file():
            raise ModelFormatError(f"{directory}: no {path.name} next to config.json")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:  # weights_only refuses anything that needs unpickling code
            from chrombench.models.weights import unpickling_refusal

            raise ModelFormatError(f"{path} is refused: not a plain tensor file ({unpickling_refusal(exc)})") from exc
        except Exception as exc:
            raise ModelFormatError(f"{path}: not a readable tensor file ({type(exc).__name__}: {exc})") from exc
        module = self._build_module()
        try:
            module.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ModelFormatError(f"{path} does not fit {type(self).__name__} with these parameters: {exc}") from exc
        history = config.get("training")
        stopped = history.get("stopped", "unknown") if isinstance(history, dict) else "unknown"
        if stopped not in STOP_REASONS:
            raise ModelFormatError(f"{directory}/config.json: training stopped by {stopped!r}, which model format "
                                   f"{MODEL_FORMAT} does not know (one of {', '.join(STOP_REASONS)}); retrain the model")
        self.module_ = module.to(resolve_device(self.device)).eval()
        self.history_ = history

    # -- helpers -----------------------------------------------------------------------------------
    def _fitted_module(self) -> nn.Module:
        module = getattr(self, "module_", None)
        if module is None:
            raise ChrombenchError(f"{type(self).__name__} is not fitted yet: call fit() or load a saved model")
        return module

    def _check_params(self) -> None:
        from chrombench.models.contract import validate_params

        validate_params(type(self), self.get_params(deep=False))
        if self.input_transform not in INPUT_TRANSFORMS:
            raise ChrombenchError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {self.input_transform!r}")
        for name in ("batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ChrombenchError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ChrombenchError(f"lr must be positive, got {self.lr!r}")


def _train(model: TorchChromModel, module: nn.Module, train, valid, device: torch.device,
           on_epoch: Callable | None) -> dict:
    X = transform_counts(check_counts(train.X, "train.X"), model.input_transform, device)
    y = torch.as_tensor(np.asarray(train.y, dtype=np.float32), device=device)
    Xv = yv = None
    if valid is not None:
        Xv = transform_counts(check_counts(valid.X, "valid.X", model.input_shape()), model.input_transform, device)
        yv = np.asarray(valid.y, dtype=np.int8)
    optimizer = model._optimizer(module)
    loss_fn = model._loss()
    shuffle = torch.Generator().manual_seed(int(model.seed))
    batch = int(model.batch_size)
    best_score, best_state, best_epoch, stale = -math.inf, None, -1, 0
    drops_left = int(getattr(model, "lr_drops", 0) or 0)
    rescues_left, lr_cuts = int(getattr(model, "stall_rescues", STALL_RESCUES)), []
    floor = None  # the stall rule's linear floor: computed only if patience runs out with an early best epoch
    epochs: list[dict] = []
    stopped = "cap"
    for epoch in range(int(model.epochs)):
        start = time.perf_counter()
        module.train()
        order = torch.randperm(len(X), generator=shuffle).to(device)
        total, seen = torch.zeros((), device=device), 0  # summed on the device: no sync per batch
        for i in range(0, len(X), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model._logits(module, X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
            seen += len(idx)
        train_loss = float(total) / max(seen, 1)  # waits for the device, so the time below is complete
        metrics = {"train_loss": train_loss, "epoch_time": time.perf_counter() - start}
        metrics.update(_validate(model, module, Xv, yv, loss_fn))
        epochs.append({"epoch": epoch, **metrics})
        if not math.isfinite(metrics["train_loss"]):
            stopped = "diverged"  # keep the best finite epoch (if any) rather than NaN weights
            break
        score = metrics["valid_auroc"] if math.isfinite(metrics["valid_auroc"]) else -metrics["valid_loss"]
        if valid is None or score > best_score + float(getattr(model, "min_improvement", 0.0)):
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
        if valid is not None and stale >= int(model.patience):
            # a plateau first lowers the step size (lr_drops of them); so does one that comes before the
            # fit learned anything (a stall), which a smaller step is the cure for. Otherwise it ends the fit.
            if best_epoch < STALL_EPOCHS and floor is None:
                floor = linear_floor(train, valid)
            stalled = best_epoch < STALL_EPOCHS and rescues_left > 0 and \
                is_stalled_fit("patience", best_epoch, best_score, floor)
            if drops_left > 0 or stalled:
                drops_left, rescues_left = (drops_left - 1, rescues_left) if drops_left > 0 else (0, rescues_left - 1)
                _scale_lr(optimizer, LR_DROP_FACTOR)
                module.load_state_dict(best_state)  # the smaller step starts again from the best weights
                lr_cuts.append(epoch)
                stale = 0
            else:
                stopped = "patience"
        if on_epoch is not None:
            try:
                on_epoch(epoch, dict(metrics))
            except StopTraining as stop:  # the engine's stop rule (a time limit): keep the best epoch
                stopped = stopped if stopped == "patience" else stop.reason
                break
        if stopped == "patience":
            break
    if best_state is None:
        raise ChrombenchError(f"training diverged (non-finite loss) in the first epoch; try a lower lr than {model.lr}")
    module.load_state_dict(best_state)
    out = {"best_epoch": best_epoch, "stopped": stopped, "epochs": epochs, "lr_cuts": lr_cuts,
           "optimizer": optimizer_name(optimizer)}
    if floor is not None:
        out.update(valid_floor=floor, best_valid_auroc=best_score)
    return out


def _compute_of(paths: set, kernel_threads: int, torch_threads: int, optimizer: str | None,
                device: torch.device) -> dict:
    """The ``compute`` block of a fit whose LSTM layers ran ``paths`` (``batched_lstm.recording_paths``)."""
    path = "mixed" if len(paths) > 1 else "native" if paths == {"native"} else "torch"
    return compute_report(path, isa=native_library.isa(), threads=kernel_threads if path != "torch" else torch_threads,
                          optimizer=optimizer, device=device.type)


def optimizer_name(optimizer) -> str:
    """What took the optimizer steps: ``torch.optim.Adam(fused)`` for a torch optimizer (or one a model's
    wrapper holds), else the wrapper's own ``name`` or class name."""
    inner = optimizer if isinstance(optimizer, torch.optim.Optimizer) else \
        next((v for v in vars(optimizer).values() if isinstance(v, torch.optim.Optimizer)), None)
    if inner is None:
        return str(getattr(optimizer, "name", type(optimizer).__name__))
    group = inner.param_groups[0] if inner.param_groups else {}
    how = "fused" if group.get("fused") else "foreach" if group.get("foreach") else "for-loop"
    return f"torch.optim.{type(inner).__name__}({how})"


def linear_floor(train, valid) -> float:
    """Valid AUROC of a logistic regression on each gene's log1p per-mark totals: what a fit must beat
    to have learned anything beyond the marks' abundance (``results.is_stalled_fit``). Milliseconds."""
    from sklearn.linear_model import LogisticRegression

    def features(X):
        return np.log1p(np.asarray(X, dtype=np.float64).sum(axis=1))

    y = np.asarray(train.y)
    if len(np.unique(y)) < 2 or len(np.unique(valid.y)) < 2:
        return math.nan
    lr = LogisticRegression(max_iter=1000).fit(features(train.X), y)
    return float(auroc(np.asarray(valid.y), lr.decision_function(features(valid.X))))


class ClippedAdam:
    """Adam with gradient-norm clipping, the trainer's optimizer: ``zero_grad()``, backward, ``step()``.

    ``step()`` is ``nn.utils.clip_grad_norm_(params, clip)`` (``clip`` 0: no clipping) then torch's Adam
    with L2 ``weight_decay``, its fused update where torch has one for these tensors. torch's own and not
    a native step, so that a model without native layers computes the same with or without a C compiler:
    at the zoo's batch sizes a native step saved at most ~2% of a recurrent model's training step
    (``benchmarks/bench_adam.py`` prints the optimizer's share of each model's step).
    """

    def __init__(self, module: nn.Module, lr: float, weight_decay: float = 0.0, clip: float = 0.0):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.clip = float(clip)
        # one norm over all tensors at once where torch can (CPU, CUDA): half the clipping time on a CPU
        self.foreach = all(p.device.type in ("cpu", "cuda") for p in self.params)
        self.torch = _torch_adam(self.params, float(lr), float(weight_decay))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def scale_lr(self, factor: float) -> None:
        for group in self.torch.param_groups:
            group["lr"] *= factor

    def step(self) -> None:
        if self.clip:
            nn.utils.clip_grad_norm_(self.params, self.clip, foreach=self.foreach or None)
        self.torch.step()


def _scale_lr(optimizer, factor: float) -> None:
    """Multiply the step size of the trainer's optimizer (``ClippedAdam``) or of a torch optimizer."""
    if hasattr(optimizer, "scale_lr"):
        optimizer.scale_lr(factor)
    else:
        for group in optimizer.param_groups:
            group["lr"] *= factor


def _torch_adam(params, lr: float, weight_decay: float) -> torch.optim.Adam:
    """torch's Adam, with its fused update (one kernel per tensor) where torch has it for these tensors."""
    if all(p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a torch without the fused update for these tensors
            pass
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def _validate(model: TorchChromModel, module: nn.Module, Xv, yv, loss_fn) -> dict[str, float]:
    if Xv is None:
        return {"valid_auroc": math.nan, "valid_loss": math.nan, "valid_time": 0.0}
    start = time.perf_counter()
    module.eval()

    def batch(lo: int, hi: int) -> torch.Tensor:
        with torch.inference_mode():
            return model._logits(module, Xv[lo:hi]).float().cpu()

    logits = torch.cat(map_chunks(batch, len(Xv), PREDICT_BATCH, Xv.device))
    loss = float(loss_fn(logits, torch.as_tensor(yv, dtype=torch.float32)))
    score = math.nan
    if 0 < yv.sum() < len(yv) and torch.isfinite(logits).all():
        score = auroc(yv, logits.double().numpy())
    return {"valid_auroc": score, "valid_loss": loss, "valid_time": time.perf_counter() - start}

