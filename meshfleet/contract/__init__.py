"""The Temporal contract: names, payloads, failure details and search attributes.

What workflows, activities, the worker and every client agree on, and what running executions
hold in their histories: names never change and payloads only gain optional fields
(docs/upgrading.md).
"""
