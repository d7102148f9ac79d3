/**
 * One pcapng file for every session of a daemon (`--pcap FILE`, as passt's `--pcap`): an SHB,
 * then an IDB per session as it starts (if_name = session id, if_description = link kind and
 * peer) and the session's frames as EPBs on its interface, with their direction in
 * epb_flags (inbound = from the guest). Buffering, prompt flushing and the bounded queue are
 * CaptureFile's (src/pcap/writer.ts).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { epbLength, idbLength, shbLength, writeEpb, writeIdb, writeShb } from './pcapng.js';
import { CaptureFile, LINKTYPE_ETHERNET, type CaptureDirection, type CaptureFileOptions, type CaptureSink } from './writer.js';

/** What names an interface: the session. */
export interface PcapngInterfaceInfo {
  readonly name: string;
  readonly description: string;
}

export class PcapngFileWriter extends CaptureFile {
  #interfaces = 0;

  private constructor(path: string, header: Uint8Array, o: CaptureFileOptions, file: FileHandle) {
    super(path, header, o, file);
  }

  /**
   * Creates (truncates) `path` and writes the section header. Rejects when the file cannot be
   * created, so that a daemon reports a bad path at start rather than at the first session.
   */
  static async open(path: string, o: CaptureFileOptions & { readonly userAppl?: string } = {}): Promise<PcapngFileWriter> {
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    const shb = o.userAppl === undefined ? {} : { userAppl: o.userAppl };
    const header = new Uint8Array(shbLength(shb));
    writeShb(shb, header);
    return new PcapngFileWriter(path, header, o, handle);
  }

  /** Interfaces described so far. */
  get interfaces(): number {
    return this.#interfaces;
  }

  /** Describes a new interface (one per session) and returns the sink that writes its frames. */
  addInterface(info: PcapngInterfaceInfo): CaptureSink {
    const idb = { linkType: LINKTYPE_ETHERNET, snaplen: 0, name: info.name, description: info.description };
    const at = this.reserve(idbLength(idb), true);
    // An IDB is never dropped while the file works; if it failed, nothing more is written anyway.
    if (at >= 0) writeIdb(idb, this.buffer, at);
    return new PcapngInterface(this, this.#interfaces++);
  }

  /** Used by PcapngInterface: one EPB; false when dropped. */
  writeFrame(interfaceId: number, frame: Uint8Array, direction: CaptureDirection | undefined): boolean {
    const epb = { interfaceId, timeUs: this.nowUs(), data: frame, direction };
    const at = this.reserve(epbLength(epb));
    if (at < 0) return false;
    writeEpb(epb, this.buffer, at);
    return true;
  }
}

/** One session's interface of a shared pcapng file. */
class PcapngInterface implements CaptureSink {
  readonly #file: PcapngFileWriter;
  readonly id: number;
  packets = 0;
  dropped = 0;

  constructor(file: PcapngFileWriter, id: number) {
    this.#file = file;
    this.id = id;
  }

  get path(): string {
    return `${this.#file.path}#${this.id}`;
  }

  get error(): Error | undefined {
    return this.#file.error;
  }

  write(frame: Uint8Array, direction?: CaptureDirection): void {
    if (this.#file.writeFrame(this.id, frame, direction)) this.packets++;
    else this.dropped++;
  }

  /** The file stays open for the other sessions: this only hands the buffered records over. */
  close(): Promise<void> {
    this.#file.flush();
    return Promise.resolve();
  }
}

/**
 * A pcapng file written block by block by its owner (a recording: src/replay/recorder.ts
 * writes the section header, interfaces, packets and custom blocks itself), with
 * CaptureFile's buffering and bounded queue: `append` returns false when the block is dropped.
 */
export class PcapngBlockFile extends CaptureFile {
  /** Opens (truncates) `path` in the background: a failure lands in `error`, and blocks are dropped. */
  constructor(path: string, o: CaptureFileOptions = {}, file?: FileHandle) {
    super(path, new Uint8Array(0), o, file);
  }

  /** Creates (truncates) `path`; rejects when it cannot be created. */
  static async open(path: string, o: CaptureFileOptions = {}): Promise<PcapngBlockFile> {
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
    return new PcapngBlockFile(path, o, handle);
  }

  /** Room for one block of `length` bytes, filled by `write`; false when dropped (disk behind, file failed or closing). */
  append(length: number, write: (into: Uint8Array, at: number) => void): boolean {
    const at = this.reserve(length);
    if (at < 0) return false;
    write(this.buffer, at);
    return true;
  }
}
