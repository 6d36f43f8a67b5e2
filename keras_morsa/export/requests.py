"""Validation of serving requests inside exported signatures (TensorFlow by nature).

TF Serving feeds a request's tensors straight into the signature's graph, so a malformed request must be
rejected by an op in that graph, with a message a client can act on, instead of failing deep inside a
convolution. The inputs are declared with an unknown shape so that these checks stay in the graph: with a
static shape TensorFlow would drop them at tracing time.

Why ``tf.cond`` and not ``tf.debugging.assert_*`` under ``tf.control_dependencies``: Grappler (which TF
Serving runs) may schedule a shape-dependent op such as ``EnsureShape`` before a control-dependency assert,
and the client then sees that op's error instead of ours. A value returned from the failing branch of a
``cond`` cannot exist before the branch's assert has run.
"""

import tensorflow as tf


def require(ok, value, message, *details):
    """Returns ``value`` when the scalar bool ``ok`` holds at run time, else fails the request.

    Args:
        ok: scalar bool tensor.
        value: the tensor to pass on once checked.
        message: the error text; ``{}`` placeholders are filled with ``details`` (tensors) by
            ``tf.strings.format``.
        *details: tensors shown in the message (e.g. the shape received).

    Returns:
        ``value`` (an identity of it that depends on the check).
    """

    def fail():
        text = tf.strings.format(message, details) if details else tf.constant(message)
        with tf.control_dependencies([tf.debugging.Assert(False, [text])]):
            return tf.identity(value)

    return tf.cond(ok, lambda: tf.identity(value), fail)


def padded_shape(tensor, rank):
    """``tf.shape(tensor)`` padded with zeros to at least ``rank`` entries, so any index below ``rank`` exists."""
    return tf.concat([tf.shape(tensor), tf.zeros([rank], tf.int32)], axis=0)


def scalar_int(value, name, low=None, high=None):
    """Checks that ``value`` holds exactly one integer (in ``[low, high]`` when given); returns it as a scalar.

    One element of any rank is accepted because TF Serving's row format (``"instances"``) adds a batch axis
    that its column format (``"inputs"``) does not.
    """
    value = require(tf.equal(tf.size(value), 1), value, f"{name} must be one integer; got shape {{}}", tf.shape(value))
    value = tf.reshape(value, [])
    if low is None:
        return value
    in_range = tf.logical_and(value >= low, value <= high)
    return require(in_range, value, f"{name} must be in [{low}, {high}]; got {{}}", value)
