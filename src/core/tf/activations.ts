// transformers' activation functions (ACT2FN, activations.py) in tfjs: the reference every engine's own version
// (ort/engine.ts, activationNodes) is tested against.
import * as tf from '@tensorflow/tfjs-core'
import type { Activation } from '../lm/model-config'

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/** transformers' ACT2FN (activations.py), elementwise. */
export const ACTIVATION_FNS: Record<Activation, (x: tf.Tensor) => tf.Tensor> = {
  gelu: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  // gelu_new, gelu_pytorch_tanh and gelu_fast are the same tanh approximation written three ways.
  gelu_new: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))),
  gelu_pytorch_tanh: (x) => ACTIVATION_FNS.gelu_new(x),
  gelu_fast: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.mul(x, 0.7978845608), tf.add(1, tf.mul(0.044715, tf.square(x))))))),
  quick_gelu: (x) => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))),
  relu: (x) => tf.relu(x),
  silu: (x) => tf.mul(x, tf.sigmoid(x)),
  swish: (x) => tf.mul(x, tf.sigmoid(x))
}
