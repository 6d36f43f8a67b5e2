"""JAX backend: the GAN step's plumbing and Grad-CAM's gradient.

The GAN step is written as pure functions of the variable values, with the state threaded explicitly.

Keras's JAX trainer passes ``state = (trainable, non_trainable, optimizer, metrics)`` values, ordered like
``model.trainable_variables``, ``model.non_trainable_variables``, ``model.optimizer.variables`` (G's
optimizer) and ``model.metrics_variables``. The D optimizer's variables are tracked among the model's
non-trainable variables (``FastGAN.compile``), so they travel in the same state.

The shared game code is stateful Keras code; each part runs inside a ``StatelessScope`` that maps every
variable to its current value, and whatever it assigns (batch-norm statistics, spectral-norm vectors, seed
states, EMA weights, loss means) is read back from the scope into the threaded values. G runs once under
``jax.vjp``; D's gradient comes from ``jax.value_and_grad``; the generator loss is differentiated with
respect to the fakes and pulled back through G with the saved VJP.
"""

import jax
import jax.numpy as jnp
from keras import StatelessScope


def replica_position():
    """``(0, 1)``: ``keras.distribution`` runs the step on the global batch (SPMD), not per replica."""
    return 0, 1


class _Values:
    """The current value of every model variable, by variable identity."""

    def __init__(self, model, state):
        groups = (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
        self.groups = groups
        self.variables = [v for group in groups for v in group]
        self.current = {id(v): value for group, values in zip(groups, state) for v, value in zip(group, values)}

    def of(self, variables):
        return [self.current[id(v)] for v in variables]

    def set(self, variables, values):
        self.current.update(zip(map(id, variables), values))

    def run(self, fn, overrides=()):
        """Runs ``fn()`` with every variable mapped to its value (``overrides``: (variables, values)).

        Returns ``fn``'s output and ``{id: value}`` of every variable not overridden, after ``fn``.
        """
        mapping = dict(self.current)
        overridden = set()
        for variables, values in overrides:
            mapping.update(zip(map(id, variables), values))
            overridden.update(map(id, variables))
        with StatelessScope(state_mapping=[(v, mapping[id(v)]) for v in self.variables]) as scope:
            out = fn()
        updates = {id(v): scope.get_current_value(v) for v in self.variables if id(v) not in overridden}
        return out, updates

    def state(self):
        return tuple(self.of(group) for group in self.groups)


def train_step(model, state, data):
    values = _Values(model, state)
    real, labels = model.real_images(data), model.real_labels(data)
    g_weights = model.generator.trainable_variables
    d_weights = model.discriminator.trainable_variables

    def fakes_of(g_values):
        return values.run(lambda: model.fake_images(real.shape[0], labels), [(g_weights, g_values)])

    fakes, pull_back, updates = jax.vjp(fakes_of, values.of(g_weights), has_aux=True)
    values.current.update(updates)

    def d_loss_of(d_values):
        constant = [jax.lax.stop_gradient(f) for f in fakes]
        (loss, losses), updates = values.run(
            lambda: model.discriminator_loss(real, constant, labels), [(d_weights, d_values)]
        )
        return loss, (losses, updates)

    (_, (losses, updates)), d_grads = jax.value_and_grad(d_loss_of, has_aux=True)(values.of(d_weights))
    values.current.update(updates)
    d_values, d_optimizer_values = model.d_optimizer.stateless_apply(
        values.of(model.d_optimizer.variables), d_grads, values.of(d_weights)
    )
    values.set(d_weights, d_values)
    values.set(model.d_optimizer.variables, d_optimizer_values)

    def g_loss_of(fake_values):
        return values.run(lambda: model.generator_loss(fake_values, labels))

    (g_loss, updates), fake_grads = jax.value_and_grad(g_loss_of, has_aux=True)(fakes)
    values.current.update(updates)
    (g_grads,) = pull_back(fake_grads)
    g_values, g_optimizer_values = model.g_optimizer.stateless_apply(
        values.of(model.g_optimizer.variables), g_grads, values.of(g_weights)
    )
    values.set(g_weights, g_values)
    values.set(model.g_optimizer.variables, g_optimizer_values)

    logs, updates = values.run(lambda: model.finish_step({**losses, "g_loss": g_loss}))
    values.current.update(updates)
    return logs, values.state()


def value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to ``x``: ``jax.value_and_grad`` (``fn`` is traced, so it must
    not convert to NumPy inside)."""
    return jax.value_and_grad(fn)(jnp.asarray(x))


def conv_kernel(kernel):
    """The kernel as it is: XLA's convolutions differentiate any layout."""
    return kernel


def accelerators():
    """Names of the GPUs and TPUs JAX sees (empty on a CPU-only machine)."""
    return [str(d) for d in jax.devices() if d.platform != "cpu"]


def devices():
    """``[(name, model or None)]`` of the devices JAX uses (``("cuda:0", "NVIDIA H200")``, ``("cpu:0", None)``)."""
    return [(f"{d.platform}:{d.id}", None if d.platform == "cpu" else d.device_kind) for d in jax.devices()]
