// Package identity knows the identifier schemes persons are known by and
// checks that a value is well formed for its scheme:
//
//   - no:fnr  Norwegian birth number (fødselsnummer), 11 digits, two
//     mod-11 check digits; the first may also follow the rule for numbers
//     issued from 2032 (remainder 0, 1, 2 or 3), whose individual number
//     says neither gender nor century: such a number is accepted with
//     its birth date unknown, and no gender is read from any number;
//   - no:dnr  Norwegian D-number: a birth number whose day is increased
//     by 40, given to people who are not resident;
//   - dk:cpr  Danish CPR number, 10 digits (date and sequence; the old
//     mod-11 check is not applied, since Denmark stopped guaranteeing it
//     in 2007);
//   - se:pnr  Swedish personnummer in the 12-digit form YYYYMMDDNNNC with
//     a Luhn check digit (samordningsnummer, day+60, included);
//   - fi:hetu Finnish personal identity code DDMMYYCZZZQ with a mod-31
//     check character (temporary codes, individual number 900–999, are
//     refused: organisations make them up locally, so they may name two
//     people);
//   - passport:<ISO 3166-1 alpha-3> a passport number of that state.
//
// Norwegian synthetic test persons follow the Norwegian Tax
// Administration's convention: the month is increased by 80. Such numbers
// validate, and Number.Synthetic reports them. SyntheticNO generates them.
//
// Assurance never depends on the scheme. A person with a D-number or a
// foreign passport who was proofed as well as a person with a birth number
// logs in at the same level: the level is computed from proofing and
// authenticator evidence in package assurance, and nothing there reads the
// scheme. This package only says whether an identifier is well formed.
//
// Numbers change: a D-number is followed by a birth number, a birth
// number is replaced. A person may hold several numbers, of one scheme
// or of several; the help desk adds the new one beside the old (ADR 30),
// and a login with either is the same person.
//
// It also says what a person's given or family name may be (ValidName),
// and which characters no name may hold, a person's or a passkey's
// (HiddenRune): those that do not show as themselves, with which one
// name can be made to read as another.
//
// Persons themselves are stored through package store; proofing and
// linking decisions belong to the broker.
package identity
