"""Conversations: multi-turn questions, each made standalone from the earlier ones before retrieval.

limits.py    what a conversation may be given (title, knowledge bases)
models.py    the tables, and `Owner` (the principal a conversation belongs to)
store.py     `ConversationStore`: the owner's conversations and messages in PostgreSQL; `purge`
service.py   `ConversationService`: the use case (`ask`, and `follow_up`, where a follow-up is rewritten)
"""
