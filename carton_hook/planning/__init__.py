"""Choose what a model needs on this interpreter: open the model, select its lock section,
write the plan."""
