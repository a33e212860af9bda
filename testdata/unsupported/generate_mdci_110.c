/* Writes mdci_110.h5 (path given as the argument) with the Debian
 * libhdf5 1.10 the command line links: a file closed with a metadata
 * cache image (H5Pset_mdc_image_config, libver v110..latest) holding a
 * contiguous dataset with an attribute, a chunked deflated dataset and
 * nested groups. h5py (HDF5 2.0) reads it back.
 *
 *     h5cc -o /tmp/generate_mdci_110 testdata/unsupported/generate_mdci_110.c
 *     /tmp/generate_mdci_110 testdata/unsupported/mdci_110.h5
 */
#include <hdf5.h>
#include <stdio.h>
int main(int argc, char **argv) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    H5AC_cache_image_config_t cfg = {H5AC__CURR_CACHE_IMAGE_CONFIG_VERSION, 1, 0, H5AC__CACHE_IMAGE__ENTRY_AGEOUT__NONE};
    if (H5Pset_mdc_image_config(fapl, &cfg) < 0) return 1;
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) return 2;
    hsize_t dims[1] = {100};
    int data[100];
    for (int i = 0; i < 100; i++) data[i] = i * 3;
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "ints", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    hid_t as = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "scale", H5T_IEEE_F64LE, as, H5P_DEFAULT, H5P_DEFAULT);
    double v = 2.5; H5Awrite(a, H5T_NATIVE_DOUBLE, &v); H5Aclose(a); H5Sclose(as);
    H5Dclose(d);
    hsize_t cd[1] = {10};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, cd); H5Pset_deflate(dcpl, 4);
    d = H5Dcreate2(f, "chunked", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d); H5Pclose(dcpl); H5Sclose(sp);
    hid_t g = H5Gcreate2(f, "group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g2 = H5Gcreate2(g, "sub", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g2); H5Gclose(g);
    H5Fclose(f); H5Pclose(fapl);
    return 0;
}
