import { checkPassword, isCommonPassword, isRepetitive } from '../../../../domain/accounts/password-policy';

const opts = { minLength: 12, maxLength: 64 };

function codeOf(password: string, o: Parameters<typeof checkPassword>[1] = opts) {
  const r = checkPassword(password, o);
  return r.ok ? 'ok' : r.code;
}

describe('checkPassword: acceptable passwords', () => {
  it.each([
    'correct horse battery staple',
    'Tr0ub4dor&3-purple-otter',
    'my cat eats only blue cheese',
    'zebra-lamp-violin',
    'пароль для почты и банка', // non-ASCII is allowed, no composition rules
  ])('accepts %j', (pw) => {
    expect(checkPassword(pw, opts)).toEqual({ ok: true });
  });

  it('does not demand digits, upper case or symbols (no composition rules)', () => {
    expect(codeOf('plainlowercaseletters')).toBe('ok');
  });
});

describe('checkPassword: length', () => {
  it('rejects a password one character shorter than the minimum and accepts one at it', () => {
    expect(codeOf('zebra-lamp-')).toBe('too_short'); // 11
    expect(codeOf('zebra-lamp-v')).toBe('ok'); // 12
  });

  it('rejects a password longer than the maximum and accepts one at it', () => {
    const unit = 'quiet river stone ';
    const long = unit.repeat(4).slice(0, 64);
    expect(codeOf(long)).toBe('ok');
    expect(codeOf(long + 'x')).toBe('too_long');
  });

  it('counts an emoji as one character, not as two UTF-16 units', () => {
    const pw = 'zebra-lamp-' + '\u{1F984}'; // 11 + 1 code points, 13 UTF-16 units
    expect(codeOf(pw, { minLength: 12, maxLength: 64 })).toBe('ok');
    expect(codeOf(pw, { minLength: 13, maxLength: 64 })).toBe('too_short');
    const atMax = 'quiet river stone '.repeat(4).slice(0, 63) + '\u{1F984}'; // 64 code points
    expect(codeOf(atMax, { minLength: 12, maxLength: 64 })).toBe('ok');
  });

  it('counts the code points as sent, as the document does, not the NFKC form (which may be longer or shorter)', () => {
    const combining = 'zebra-lamp-' + 'e\u0301'; // 13 code points as sent, 12 after NFKC
    expect(codeOf(combining, { minLength: 13, maxLength: 64 })).toBe('ok');
    expect(codeOf(combining, { minLength: 14, maxLength: 64 })).toBe('too_short');
    const macrons = 'zebra-lamp' + '\u00af'; // 11 as sent; NFKC makes each U+00AF two (space + U+0304)
    expect(codeOf(macrons, { minLength: 12, maxLength: 64 })).toBe('too_short');
  });

  it('gives a reason that states the limit', () => {
    const r = checkPassword('short', opts);
    expect(r).toMatchObject({ ok: false, code: 'too_short' });
    expect(!r.ok && r.reason).toContain('12');
  });
});

describe('checkPassword: repetitive and sequential passwords', () => {
  it.each([
    ['one repeated character', 'aaaaaaaaaaaa'],
    ['one repeated symbol', '************'],
    ['a repeated short block', 'abcabcabcabc'],
    ['a repeated pair', '121212121212'],
    ['a repeated 4-character block, mixed case', 'AbCdabcdABCD'],
    ['an alphabetic run', 'abcdefghijklm'],
    ['a descending alphabetic run in upper case', 'ZYXWVUTSRQPO'],
    ['an ascending digit run wrapping 9 to 0', '123456789012'],
    ['a descending digit run wrapping 0 to 9', '987654321098'],
  ])('rejects %s', (_label, pw) => {
    expect(codeOf(pw)).toBe('repetitive');
  });

  it('accepts passwords that only contain a short run or repeat', () => {
    expect(isRepetitive('abcdefghijkz')).toBe(false);
    expect(isRepetitive('aaaaaaaaaaab')).toBe(false);
    expect(isRepetitive('abcdeabcdeab')).toBe(false); // 5-character block: not "trivial"
    expect(codeOf('aaaa zebra lamp')).toBe('ok');
  });
});

describe('checkPassword: e-mail address and name', () => {
  it('rejects a password containing the e-mail local part, whatever the case', () => {
    expect(codeOf('MyAlice.Smith-secret', { ...opts, email: 'alice.smith@example.com' })).toBe('contains_email');
  });

  it('also catches the local part without its +tag', () => {
    expect(codeOf('jonathan-likes-tea', { ...opts, email: 'jonathan+shop@example.org' })).toBe('contains_email');
  });

  it('ignores local parts shorter than 3 characters', () => {
    expect(codeOf('bob-is-not-a-word-here', { ...opts, email: 'ob@example.com' })).toBe('ok');
    expect(codeOf('bob-is-not-a-word-here', { ...opts, email: 'bob@example.com' })).toBe('contains_email');
  });

  it('does not reject for the domain part of the address', () => {
    expect(codeOf('example-zebra-lamp', { ...opts, email: 'zq@example.com' })).toBe('ok');
  });

  it('rejects a password containing a word of the user name of 4+ characters', () => {
    expect(codeOf('Thatcher-garden-77', { ...opts, name: 'Margaret Thatcher' })).toBe('contains_email');
    expect(codeOf('al-likes-green-tea', { ...opts, name: 'Al Bundy' })).toBe('ok');
  });
});

describe('checkPassword: common and breached passwords', () => {
  it.each(['password1234', 'qwertyuiop12', '1qaz2wsx3edc', '1q2w3e4r5t6y'])('rejects %j from the common-password list', (pw) => {
    expect(isCommonPassword(pw)).toBe(true);
    expect(codeOf(pw)).toBe('common');
  });

  it('rejects list entries regardless of case', () => {
    expect(codeOf('PASSWORD1234')).toBe('common');
    expect(codeOf('QwertyUiop12')).toBe('common');
  });

  it('rejects a common word of 8+ characters followed only by digits and symbols', () => {
    expect(codeOf('Password123!')).toBe('common');
    expect(codeOf('Sunshine2024!!')).toBe('common');
    expect(codeOf('football!!11')).toBe('common');
    expect(codeOf('superman 1999')).toBe('common');
  });

  it('does not strip when the common word is shorter than 8 characters', () => {
    // "dragon" is on the list but too short to condemn a longer password built on it.
    expect(isCommonPassword('dragon')).toBe(true);
    expect(codeOf('dragon1234567!')).toBe('ok');
  });

  it('does not reject a common word followed by more letters', () => {
    expect(codeOf('sunshine over the bay')).toBe('ok');
  });

  it('sees through full-width characters thanks to NFKC', () => {
    expect(codeOf('ｐａｓｓｗｏｒｄ１２３４')).toBe('common');
  });
});

describe('checkPassword: order of checks', () => {
  it('reports length before anything else', () => {
    expect(codeOf('aaaa')).toBe('too_short');
    expect(codeOf('password')).toBe('too_short');
  });

  it('reports a digit run as repetitive even when it is also on the common list', () => {
    expect(isCommonPassword('123456789012')).toBe(true);
    expect(codeOf('123456789012')).toBe('repetitive');
  });
});
