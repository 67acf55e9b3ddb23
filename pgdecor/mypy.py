"""A mypy plugin that lets pgdecor stubs keep their ``...`` bodies, and types method stubs as methods.

mypy reports ``[empty-body]`` for a function whose body is ``...`` and whose return type is not None. A pgdecor
stub's body is never run, so for functions decorated with `pgdecor.procedure`, `pgdecor.query`,
`pgdecor.listen`, `pgdecor.copy_in` or `pgdecor.copy_out` this plugin withdraws that one error; every other check
still applies. A stub defined in a class keeps its function type, so that ``member.delete()`` binds ``self`` (and
``cached_property`` applies) as for any method. An error in the arguments of a call names the stub
(``Argument 1 to "get_user" has incompatible type ...``), not the ``__call__`` of its type.

Enable it with one line of configuration::

    # pyproject.toml
    [tool.mypy]
    plugins = ["pgdecor.mypy"]
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.errorcodes import EMPTY_BODY
from mypy.nodes import FUNC_NO_INFO, CallExpr, Decorator, MemberExpr, NameExpr
from mypy.plugin import FunctionContext, MethodContext, MethodSigContext, Plugin
from mypy.types import FunctionLike, Type

_DECORATORS = frozenset({"pgdecor._stubs.decorators.procedure"})
_DECORATOR_CALLS = frozenset(
    {
        "pgdecor._stubs.decorators._Decorator.__call__",
        "pgdecor._stubs.notify._Listen.__call__",
        "pgdecor._stubs.copy._CopyDecorator.__call__",
    }
)

#: The types of decorated stubs, whose calls go through their `__call__`.
_STUB_CALLS = frozenset({"pgdecor._stubs.stub.Stub.__call__", "pgdecor._stubs.copy.CopyStub.__call__"})


def _decorated(ctx: FunctionContext | MethodContext) -> Type:
    decorator = ctx.context
    if not isinstance(decorator, Decorator):
        return ctx.default_return_type
    _allow_empty_body(ctx, decorator)
    if decorator.func.info is not FUNC_NO_INFO and ctx.arg_types and ctx.arg_types[0]:
        # A stub defined in a class is a method: keep the function's own type, so that mypy binds `self` on
        # instances (and property/cached_property/staticmethod apply to it) as for any method.
        return ctx.arg_types[0][0]
    return ctx.default_return_type


def _allow_empty_body(ctx: FunctionContext | MethodContext, decorator: Decorator) -> None:
    func = decorator.func
    # mypy skips the empty-body check for definitions it knows never run (those under `if TYPE_CHECKING:`);
    # a stub's body never runs either. mypy usually checks function bodies after their decorators; when it
    # already has, the error is withdrawn.
    func.is_mypy_only = True
    errors = ctx.api.msg.errors
    infos = errors.error_info_map.get(errors.file)
    if infos:
        infos[:] = [i for i in infos if not (i.code == EMPTY_BODY and i.line == func.line)]


def _named_after_stub(ctx: MethodSigContext) -> FunctionLike:
    # mypy names the callable in its messages; the stub's own name is the one its user wrote at the call.
    call = ctx.context
    callee = call.callee if isinstance(call, CallExpr) else None
    signature = ctx.default_signature
    if not isinstance(callee, (NameExpr, MemberExpr)):
        return signature
    # Notes then point at the stub's definition rather than at `Stub.__call__`.
    definition = callee.node.func if isinstance(callee.node, Decorator) else signature.definition
    return signature.copy_modified(name=callee.name, definition=definition)


class PgdecorPlugin(Plugin):
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _decorated if fullname in _DECORATORS else None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return _decorated if fullname in _DECORATOR_CALLS else None

    def get_method_signature_hook(self, fullname: str) -> Callable[[MethodSigContext], FunctionLike] | None:
        return _named_after_stub if fullname in _STUB_CALLS else None


def plugin(version: str) -> type[Plugin]:  # noqa: ARG001 - the signature mypy requires
    """The entry point mypy calls."""
    return PgdecorPlugin
