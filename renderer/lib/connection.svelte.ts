// Whether the page can reach the studio: in web mode the server may stop, restart (with a new token)
// or be opened without the token; the desktop app's IPC is always there. The header's status and
// App's banner read `link`; `onback` runs when a lost connection comes back (re-read what changed).

export type Link = 'connecting' | 'open' | 'lost' | 'unauthorized' | 'no-token';

export class ConnectionState {
  link = $state<Link>('connecting');
  /** The link is down for a reason the user has to act on, or is waiting for the server. */
  down = $derived(this.link === 'lost' || this.link === 'unauthorized' || this.link === 'no-token');
  #onback: (() => void)[] = [];

  /** The transport saw the server answer (a socket opened, a request got a reply). */
  opened = (): void => {
    const wasLost = this.link === 'lost';
    if (this.link === 'unauthorized' || this.link === 'no-token') return;
    this.link = 'open';
    if (wasLost) for (const f of this.#onback) f();
  };

  /** The event socket closed or a request could not reach the server. */
  lost = (): void => {
    if (this.link === 'open' || this.link === 'connecting') this.link = 'lost';
  };

  /** The server refused the token: it restarted (new token) or the address had none. */
  refused = (): void => {
    if (this.link !== 'no-token') this.link = 'unauthorized';
  };

  noToken = (): void => {
    this.link = 'no-token';
  };

  onback(f: () => void): void {
    this.#onback.push(f);
  }
}
