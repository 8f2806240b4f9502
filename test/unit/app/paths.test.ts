import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { appDataDir, defaultLibraryDir } from '../../../main/service/paths.ts';

describe('library location', () => {
  it('follows each platform (same folder Electron uses as userData)', () => {
    assert.equal(appDataDir({ XDG_CONFIG_HOME: '/xdg' }, 'linux'), join('/xdg', 'unclip-studio'));
    assert.equal(appDataDir({}, 'linux'), join(homedir(), '.config', 'unclip-studio'));
    assert.equal(appDataDir({}, 'darwin'), join(homedir(), 'Library', 'Application Support', 'unclip-studio'));
    assert.equal(
      appDataDir({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, 'win32'),
      join('C:\\Users\\a\\AppData\\Roaming', 'unclip-studio'),
    );
    assert.equal(defaultLibraryDir({ XDG_CONFIG_HOME: '/xdg' }, 'linux'), join('/xdg', 'unclip-studio', 'library'));
  });
});
