"""GAN train step plumbing on TensorFlow: two gradient tapes, distribution-aware loss scaling.

G runs once under an outer tape; the discriminator step runs with that tape paused, then the generator loss
(with the updated D) is recorded on it, so G's gradient flows through the same fakes D was trained on.
Under a ``tf.distribute`` strategy every replica computes a mean over its share of the batch and the
optimizers sum gradients over replicas, so the losses are divided by the replica count before
differentiation (the logged losses are not).
"""

import tensorflow as tf


def replica_position():
    """``(replica index as an int32 tensor, replica count)`` of the running step."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: the whole batch is here
        return 0, 1
    return tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync


def train_step(model, data):
    real = model.real_images(data)
    batch_size = tf.shape(real)[0]
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    generator, discriminator = model.generator, model.discriminator
    with tf.GradientTape() as g_tape:
        fakes = model.fake_images(batch_size)
        with g_tape.stop_recording():
            with tf.GradientTape() as d_tape:
                d_loss, losses = model.discriminator_loss(real, [tf.stop_gradient(f) for f in fakes])
                scaled = d_loss / replicas
            d_weights = discriminator.trainable_variables
            model.d_optimizer.apply(d_tape.gradient(scaled, d_weights), d_weights)
        g_loss = model.generator_loss(fakes)
        scaled = g_loss / replicas
    g_weights = generator.trainable_variables
    model.g_optimizer.apply(g_tape.gradient(scaled, g_weights), g_weights)
    return model.finish_step({**losses, "g_loss": g_loss})
