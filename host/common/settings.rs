//! Value parsers shared by the settings of several floors (each floor
//! defines its own settings; these are the pieces they have in common).

/// A number taken as the nearest value in `LO..=HI`.
pub fn clamped<const LO: u32, const HI: u32>(value: &str) -> Result<u32, std::num::ParseIntError> {
    Ok(value.parse::<u32>()?.clamp(LO, HI))
}
