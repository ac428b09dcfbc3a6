"""``task`` as a tool of other agent frameworks, as optional extras:

- :mod:`subtask.integrations.openai_agents` (``pip install "subtask-agents[openai-agents]"``):
  a ``FunctionTool`` for the OpenAI Agents SDK;
- :mod:`subtask.integrations.langchain` (``pip install "subtask-agents[langchain]"``): a
  ``StructuredTool`` for LangChain and LangGraph.

Each awaits :meth:`subtask.Runtime.acall` on the framework's event loop (cancelling the
framework's run cancels the subagents) and returns the text subtask writes for a model.
"""
