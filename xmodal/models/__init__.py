"""Students, teachers and heads."""
