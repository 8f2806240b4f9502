// Runs before each component test file: jest-dom's matchers (toBeDisabled, toHaveAccessibleName, …)
// on Vitest's expect. Testing Library's cleanup after each test comes from the svelteTesting plugin.
import '@testing-library/jest-dom/vitest';
