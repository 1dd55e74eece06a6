"""Layers in the style of "Deep Learning from Scratch", chapter 5, made broadcast-correct.

Each layer is one node's operation. ``forward`` takes the node's input values and
keeps what ``backward`` needs; ``backward(dout)`` returns one gradient per input,
each with the shape of that input (gradients of broadcast inputs are summed back
with :func:`sum_to`). ``str(layer)`` describes the layer and the shapes it saw.

One module per family of ops; :mod:`.base` holds ``BaseLayer`` and the registry.
Adding an op is one class in its family's module, decorated with :func:`register`.
Everything is importable from here: ``from cgraph.layers import MulLayer, REGISTRY``.
"""

from .base import (
    REGISTRY,
    REQUIRED,
    Attr,
    AttrError,
    BaseLayer,
    Shape,
    VariadicLayer,
    broadcast_shapes,
    divide,
    read_axes,
    read_axis,
    read_bool,
    read_shape,
    register,
    shape_of,
    sum_axes,
    sum_to,
    summing_to,
    unbroadcast,
)
from .binary import AddLayer, BroadcastLayer, DivLayer, EqualLayer, MaximumLayer, MinimumLayer, MulLayer, PowLayer, SubLayer
from .unary import (
    AbsLayer,
    ClipLayer,
    ExpLayer,
    LogLayer,
    NegLayer,
    ReluLayer,
    SigmoidLayer,
    SqrtLayer,
    SquareLayer,
    TanhLayer,
    UnaryLayer,
)
from .reductions import ArgmaxLayer, MeanLayer, ReductionLayer, SumLayer
from .shape import ConcatLayer, FlattenLayer, IndexLayer, ReshapeLayer, StackLayer, TransposeLayer, parse_key, read_key
from .network import (
    AffineLayer,
    MatmulLayer,
    SoftmaxLayer,
    SoftmaxWithLossLayer,
    class_indices,
    matmul_grads,
    matmul_shape,
    matmul_work,
)
from .conv import AvgPool2dLayer, Conv2dLayer, MaxPool2dLayer, Pool2dLayer
from .normalization import BatchNormLayer, DropoutLayer

__all__ = [
    "REGISTRY",
    "REQUIRED",
    "AbsLayer",
    "AddLayer",
    "AffineLayer",
    "ArgmaxLayer",
    "Attr",
    "AttrError",
    "AvgPool2dLayer",
    "BaseLayer",
    "BatchNormLayer",
    "BroadcastLayer",
    "ClipLayer",
    "ConcatLayer",
    "Conv2dLayer",
    "DivLayer",
    "DropoutLayer",
    "EqualLayer",
    "ExpLayer",
    "FlattenLayer",
    "IndexLayer",
    "LogLayer",
    "MatmulLayer",
    "MaxPool2dLayer",
    "MaximumLayer",
    "MeanLayer",
    "MinimumLayer",
    "MulLayer",
    "NegLayer",
    "Pool2dLayer",
    "PowLayer",
    "ReductionLayer",
    "ReluLayer",
    "ReshapeLayer",
    "Shape",
    "SigmoidLayer",
    "SoftmaxLayer",
    "SoftmaxWithLossLayer",
    "SqrtLayer",
    "SquareLayer",
    "StackLayer",
    "SubLayer",
    "SumLayer",
    "TanhLayer",
    "TransposeLayer",
    "UnaryLayer",
    "VariadicLayer",
    "broadcast_shapes",
    "class_indices",
    "divide",
    "matmul_grads",
    "matmul_shape",
    "matmul_work",
    "parse_key",
    "read_axes",
    "read_axis",
    "read_bool",
    "read_key",
    "read_shape",
    "register",
    "shape_of",
    "sum_axes",
    "sum_to",
    "summing_to",
    "unbroadcast",
]
