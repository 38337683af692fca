"""``EMA``: train with an exponential moving average of the weights (Keras optimizers'
``use_ema``) and make the averaged model the one every epoch saves, scores and ends with.

Keras keeps the average in the optimizer and ``keras.callbacks.SwapEMAWeights`` swaps it with
the model's weights. ``EmaSwap`` swaps at each epoch's end, before the validation pass and the
weights file, and swaps back at the next epoch's start; ``EmaFinish`` runs after the epoch's
commit (``ResumeCheckpoint``) and, when training ends there, copies the average into the
optimizer's slot so that Keras's end-of-fit ``finalize_variable_values`` leaves the averaged
weights in the model (Keras's own callback does so only at the planned last epoch, not when
early stopping ends training).

Resuming: ``ResumeCheckpoint`` saves the optimizer while the weights are swapped (the slot
holds the raw training weights, the epoch's weights file the average). A resumed phase that
restores that optimizer starts with ``EmaSwap(resumed=True)``, whose first epoch start swaps
them back: training continues from exactly the weights and average it had.
"""

from __future__ import annotations

import keras


class EmaSwap(keras.callbacks.SwapEMAWeights):
    """Averaged weights in the model from each epoch's end to the next epoch's start."""

    def __init__(self, resumed: bool = False):
        super().__init__(swap_on_epoch=True)
        # A restored optimizer was saved mid-swap (see the module docstring).
        self._ema_weights_in_model = resumed

    def on_epoch_end(self, epoch, logs=None):
        # Only the swap: the end-of-training copy waits for the commit (EmaFinish), so that the
        # saved optimizer still holds the raw weights a longer run (--resume -e N) continues.
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True


class EmaFinish(keras.callbacks.Callback):
    """When training stops after this epoch (last epoch, early stopping, a failed check),
    keep the averaged weights as the model's final ones."""

    def __init__(self, swap: EmaSwap):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training or epoch == self.params["epochs"] - 1:
            self.swap._finalize_ema_values()


def ema_callbacks(enabled: bool, resumed: bool) -> tuple[list, list]:
    """The callbacks of one training phase: (first ones, last ones); empty without EMA."""
    if not enabled:
        return [], []
    swap = EmaSwap(resumed)
    return [swap], [EmaFinish(swap)]
