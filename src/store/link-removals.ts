/**
 * How processes sharing one bucket tell each other which repository links they removed, so that each may
 * remember links for long (object-repositories.ts) and still stop answering from memory for a link as soon
 * as another process removes it. A message is one link key, a few hundred bytes at most.
 */
export interface LinkRemovalChannel {
  /**
   * Tells the other processes that the link `key` is gone. Resolves once it is sent, or once sending failed
   * or took too long: the removal is done by then, and a channel that lost its connection makes its
   * listeners forget everything when it is back (see `hearing`). Never rejects.
   */
  announce(key: string): Promise<void>;
  /** Hears removals made elsewhere; returns the function that stops hearing. */
  listen(listener: LinkRemovalListener): () => void;
}

export interface LinkRemovalListener {
  /** Another process removed the link `key`. */
  removed(key: string): void;
  /**
   * Whether removals made elsewhere are heard now: called at once by `listen`, then at every change. While it
   * is false they go unheard; when it turns true again some may have been missed.
   */
  hearing(connected: boolean): void;
}
