"""GAN train step plumbing on torch: ``backward`` twice, gradients read from each variable's tensor.

G runs once with autograd on; the discriminator step uses detached fakes, then the generator loss (with the
updated D) is backpropagated through the same fakes into G. Gradients are cleared before each backward
pass, so D's gradients from the generator pass never reach D's optimizer. Optimizer steps and the EMA
update run under ``torch.no_grad()``.
"""

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
    real = model.real_images(data)
    fakes = model.fake_images(real.shape[0])
    d_loss, losses = model.discriminator_loss(real, [f.detach() for f in fakes])
    _step(model, d_loss, model.d_optimizer, model.discriminator)
    g_loss = model.generator_loss(fakes)
    _step(model, g_loss, model.g_optimizer, model.generator)
    losses = {name: value.detach() for name, value in {**losses, "g_loss": g_loss}.items()}
    with torch.no_grad():
        return model.finish_step(losses)
