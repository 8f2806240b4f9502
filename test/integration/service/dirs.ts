import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A library folder for tests whose operations never touch the library (it is opened on first use). */
export const UNOPENED_LIBRARY = join(tmpdir(), 'unclip-test-library-never-opened');
