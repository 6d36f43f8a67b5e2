"""torch backend: the GAN step's plumbing, Grad-CAM's gradient, a convolution-kernel layout fix.

The GAN step calls ``backward`` twice and reads gradients from each variable's tensor.

G runs once with autograd on; the discriminator step uses detached fakes, then the generator loss (with the
updated D) is backpropagated through the same fakes into G. Gradients are cleared before each backward
pass, so D's gradients from the generator pass never reach D's optimizer. Optimizer steps and the EMA
update run under ``torch.no_grad()``.
"""

import keras
import torch


def replica_position():
    """``(0, 1)``: data parallelism on torch is not supported by this toolkit."""
    return 0, 1


def _step(model, loss, optimizer, network):
    model.zero_grad(set_to_none=True)
    loss.backward()
    weights = network.trainable_variables
    with torch.no_grad():
        optimizer.apply([v.value.grad for v in weights], weights)


def train_step(model, data):
    real, labels = model.real_images(data), model.real_labels(data)
    fakes = model.fake_images(real.shape[0], labels)
    d_loss, losses = model.discriminator_loss(real, [f.detach() for f in fakes], labels)
    _step(model, d_loss, model.d_optimizer, model.discriminator)
    g_loss = model.generator_loss(fakes, labels)
    _step(model, g_loss, model.g_optimizer, model.generator)
    losses = {name: value.detach() for name, value in {**losses, "g_loss": g_loss}.items()}
    with torch.no_grad():
        return model.finish_step(losses)


def value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to ``x``: ``torch.autograd.grad`` on a leaf copy of ``x``."""
    # A fresh leaf: the caller's tensor (maybe produced under no_grad) is never given requires_grad.
    x = keras.ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = fn(x)
        (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def conv_kernel(kernel):
    """A ``[k, k, in, out]`` kernel whose torch layout (``[out, in, k, k]``) is contiguous when ``out`` is 1.

    Keras's torch convolution permutes the kernel to ``[out, in, k, k]`` and keeps it if it is already
    channels-last. With one output channel the permuted view counts as channels-last without being
    contiguous, and on CPUs without bf16 instructions torch's bfloat16 convolution falls back to
    ``slow_conv2d``, whose backward pass refuses it ("grad_weight must be contiguous"; FastGAN's 1-channel
    logits convolution under ``mixed_bfloat16``). Stored so that Keras's permutation yields a contiguous
    tensor, it trains on every CPU; other kernels are returned as they are (Keras copies them to
    channels-last anyway).
    """
    if kernel.ndim != 4 or kernel.shape[-1] != 1:
        return kernel
    return kernel.permute(3, 2, 0, 1).contiguous().permute(2, 3, 1, 0)


def accelerators():
    """Names of the CUDA devices torch sees (empty on a CPU-only machine)."""
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def devices():
    """``[(name, model or None)]``: the CUDA devices torch sees (``("cuda:0", "NVIDIA H200")``), then the CPU."""
    return [(f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())] + [("cpu", None)]
