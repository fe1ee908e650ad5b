"""tasksync: divide and prioritise sales work on Trello and Asana from CRM exports."""

__version__ = "0.1.0"
