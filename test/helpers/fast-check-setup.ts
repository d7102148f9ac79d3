/**
 * fast-check's default size ('small') keeps generated arrays to about ten elements whatever
 * their maxLength says, so byte-array properties never reached long inputs (a checksum
 * property missed its whole 32-bit-word path). 'medium' lets them grow to about a hundred.
 */
import fc from 'fast-check';

fc.configureGlobal({ baseSize: 'medium' });
