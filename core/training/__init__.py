"""The entry script that trains one trial inside a cloud container, and the bundle that ships it."""
