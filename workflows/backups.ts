/** Workflow of this feature area (filled in by its issue). */
export {};
