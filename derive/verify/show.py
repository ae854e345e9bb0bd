"""How a claim is shown back: the normalised code and IR nodes as text."""

from __future__ import annotations

import ast

from .. import ir
from ..printing import text as text_of


def display(code: str, ops: dict[int, str]) -> str:
    """The normalised code with each juxtaposition written as the product it was read as."""

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            name = node.func.id if isinstance(node.func, ast.Name) else ""
            if name == "_jx":
                op = ast.Mult() if ops.get(node.col_offset) == "*" else ast.MatMult()
                return ast.BinOp(node.args[0], op, node.args[1])
            if name.startswith("_d_"):
                node.func.id = name[3:] + "'"
            elif name.startswith("_cmp_"):
                op = {"gt": ast.Gt, "ge": ast.GtE, "lt": ast.Lt, "le": ast.LtE}[name[5:]]()
                return ast.Compare(node.args[0], [op], [node.args[1]])
            elif name.startswith("_f_"):
                node.func.id = "np." + name[3:]
            elif name.startswith("_m_") and node.args:
                attr = ast.Attribute(node.args[0], name[3:], ast.Load())
                return ast.Call(attr, node.args[1:], node.keywords)
            elif name.startswith("_fancy_") and len(node.args) == 3:  # x[range(N), y] -= e
                op = {"sub": "-", "add": "+", "mul": "*", "div": "/"}.get(name[7:], "")
                x, at, e = (ast.unparse(a) for a in node.args)
                return ast.Name(f"({x} with {at} {op}= {e})")
            elif name == "_shape":
                attr = ast.Attribute(node.args[0], "shape", ast.Load())
                return ast.Subscript(attr, node.args[1], ast.Load())
            return node

        def visit_Name(self, node):
            if node.id.startswith("_g_"):
                node.id = f"dL/d{node.id[3:]}"
            elif node.id == "_onesT":
                node.id = "1ᵀ"
            elif node.id.startswith("_gradf_"):
                node.id = f"∇{node.id[7:]}"
            return node

    return ast.unparse(Rewrite().visit(ast.parse(code, mode="eval")))


def show(node: ir.Node) -> str:
    """An IR node as the engine prints forms."""
    from ..matexpr import forward_form

    return text_of(forward_form(node))
